package kube

import (
	"sort"

	"github.com/hubctl/hubctl/internal/workflow"
)

// CheckWorkflow refuses, with the place in the file and the reason, what a workflow
// asks that this executor cannot do: caches and artifacts. The hub moves them as tar
// streams into and out of a job's workspace through the executor (executor.Archiver),
// which on Kubernetes needs an exec into the pod or a helper container uploading to
// the hub; neither is built. A hub whose executor is kubernetes calls it when a
// workflow is applied, so the file is refused then rather than its jobs failing at
// every run. It returns workflow.Errors, or nil.
func CheckWorkflow(wf *workflow.Workflow) error {
	var errs workflow.Errors
	for _, j := range wf.Jobs {
		if j.Cache != nil {
			errs = append(errs, workflow.Error{Pos: j.Cache.Pos, Msg: "job " + j.Name +
				": cache: this hub runs jobs on Kubernetes, whose executor cannot keep caches yet (the hub would need an exec into the job's pod or a helper container to move the cache in and out of its workspace); remove cache:, or apply the workflow to a hub with the Docker executor"})
		}
		for _, a := range j.Artifacts {
			errs = append(errs, workflow.Error{Pos: a.Pos, Msg: "job " + j.Name + ": artifact " + a.Name +
				": this hub runs jobs on Kubernetes, whose executor cannot keep artifacts yet (the hub would need an exec into the job's pod or a helper container to copy them out of its workspace); remove artifacts:, or apply the workflow to a hub with the Docker executor"})
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
