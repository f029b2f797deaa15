package hubtypes

// WorkflowArtifact is a file or directory a job run of a workflow run kept
// (GET /api/v1/runs/{id}/artifacts): a tar.gz of Size bytes in the hub's blob store.
type WorkflowArtifact struct {
	Name string `json:"name"`
	// Path is where the artifact lies in the job's workspace.
	Path      string `json:"path"`
	Job       string `json:"job"`
	JobID     int64  `json:"jobId"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	CreatedAt string `json:"createdAt,omitempty"`
}

// WorkflowCache is a cache a job run saved for its workflow, as the hub answers the
// job's upload: its key is the hub's to know, not the job's.
type WorkflowCache struct {
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	CreatedAt string `json:"createdAt,omitempty"`
}
