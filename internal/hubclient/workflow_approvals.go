package hubclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/hubctl/hubctl/internal/hubtypes"
)

// DecideJob approves (approve true) or rejects the job run job (its id or name) of
// run id, waiting for approval, with comment; the run comes back.
func (c *Client) DecideJob(ctx context.Context, id int64, job string, approve bool, comment string) (hubtypes.WorkflowRun, error) {
	verb := "reject"
	if approve {
		verb = "approve"
	}
	var out hubtypes.WorkflowRun
	return out, c.do(ctx, http.MethodPost, "runs/"+strconv.FormatInt(id, 10)+"/jobs/"+url.PathEscape(job)+"/"+verb,
		hubtypes.ApprovalRequest{Comment: comment}, &out)
}
