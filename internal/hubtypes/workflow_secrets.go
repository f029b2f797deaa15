package hubtypes

// WorkflowSecret is what the hub API shows of a namespace's workflow secret: never
// its value.
type WorkflowSecret struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	CreatedBy string `json:"createdBy,omitempty"`
	CreatedAt string `json:"createdAt"`
	UpdatedBy string `json:"updatedBy,omitempty"`
	UpdatedAt string `json:"updatedAt"`
}

// SetWorkflowSecretRequest is the body of PUT /api/v1/namespaces/{ns}/secrets/{name}.
type SetWorkflowSecretRequest struct {
	Value string `json:"value"`
}
