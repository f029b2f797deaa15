package kube

import (
	"sort"

	"github.com/hubctl/hubctl/internal/workflow"
)

// CheckWorkflow is CheckWorkflowWith("")(wf): a hub without an agent image refuses
// caches and artifacts.
func CheckWorkflow(wf *workflow.Workflow) error { return CheckWorkflowWith("")(wf) }

// CheckWorkflowWith returns what refuses, with the place in the file and the reason,
// what a workflow asks that this executor cannot do: caches and artifacts when the
// hub has no agent image (workflows.kube.agent_image), whose `hubctl workflow-agent`
// moves them in and out of the job's pod through the hub with the job's token. A hub
// whose executor is kubernetes calls it when a workflow is applied, so the file is
// refused then rather than its jobs failing at every run. It returns
// workflow.Errors, or nil.
func CheckWorkflowWith(agentImage string) func(*workflow.Workflow) error {
	return func(wf *workflow.Workflow) error {
		var errs workflow.Errors
		for _, j := range wf.Jobs {
			if agentImage != "" {
				continue
			}
			if j.Cache != nil {
				errs = append(errs, workflow.Error{Pos: j.Cache.Pos, Msg: "job " + j.Name +
					": cache: this hub runs jobs on Kubernetes without an agent image (workflows.kube.agent_image), which its jobs' pods need to restore and save caches; remove cache:, or ask the hub's operator to set it"})
			}
			for _, a := range j.Artifacts {
				errs = append(errs, workflow.Error{Pos: a.Pos, Msg: "job " + j.Name + ": artifact " + a.Name +
					": this hub runs jobs on Kubernetes without an agent image (workflows.kube.agent_image), which its jobs' pods need to move artifacts; remove artifacts:, or ask the hub's operator to set it"})
			}
		}
		if len(errs) == 0 {
			return nil
		}
		sort.SliceStable(errs, func(a, b int) bool {
			return errs[a].Line < errs[b].Line || (errs[a].Line == errs[b].Line && errs[a].Col < errs[b].Col)
		})
		return errs
	}
}
