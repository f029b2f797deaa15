package kubetest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Describe answers what a failing test needs to see of namespace ns: each
// Deployment's and ReplicaSet's replica counts, each pod's owner, phase, node,
// readiness and deletion, the node's conditions and taints, and the namespace's
// events, oldest first. It never fails: what it cannot read it says.
func (c *Cluster) Describe(ctx context.Context, ns string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	var b strings.Builder
	ds, err := c.Client.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Fprintf(&b, "deployments: %v\n", err)
	} else {
		for _, d := range ds.Items {
			want := int32(1)
			if d.Spec.Replicas != nil {
				want = *d.Spec.Replicas
			}
			fmt.Fprintf(&b, "deployment %s: generation %d observed %d; spec %d, replicas %d, updated %d, ready %d, available %d, terminating %s\n",
				d.Name, d.Generation, d.Status.ObservedGeneration, want, d.Status.Replicas, d.Status.UpdatedReplicas,
				d.Status.ReadyReplicas, d.Status.AvailableReplicas, optional(d.Status.TerminatingReplicas))
			for _, cond := range d.Status.Conditions {
				fmt.Fprintf(&b, "  condition %s=%s %s: %s\n", cond.Type, cond.Status, cond.Reason, cond.Message)
			}
		}
	}
	rss, err := c.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Fprintf(&b, "replicasets: %v\n", err)
	} else {
		for _, rs := range rss.Items {
			want := int32(1)
			if rs.Spec.Replicas != nil {
				want = *rs.Spec.Replicas
			}
			fmt.Fprintf(&b, "replicaset %s (revision %s): spec %d, replicas %d, ready %d, available %d, terminating %s\n",
				rs.Name, rs.Annotations["deployment.kubernetes.io/revision"], want, rs.Status.Replicas,
				rs.Status.ReadyReplicas, rs.Status.AvailableReplicas, optional(rs.Status.TerminatingReplicas))
		}
	}
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Fprintf(&b, "pods: %v\n", err)
	} else {
		for _, p := range pods.Items {
			owner := "-"
			if len(p.OwnerReferences) > 0 {
				owner = p.OwnerReferences[0].Kind + "/" + p.OwnerReferences[0].Name
			}
			var conds []string
			for _, cond := range p.Status.Conditions {
				conds = append(conds, string(cond.Type)+"="+string(cond.Status))
			}
			deleting := "-"
			if p.DeletionTimestamp != nil {
				deleting = p.DeletionTimestamp.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(&b, "pod %s of %s: created %s, phase %s, node %q, conditions [%s], deleting %s, finalizers %v\n",
				p.Name, owner, p.CreationTimestamp.UTC().Format(time.RFC3339), p.Status.Phase, p.Spec.NodeName,
				strings.Join(conds, " "), deleting, p.Finalizers)
		}
	}
	if n, err := c.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{}); err != nil {
		fmt.Fprintf(&b, "node %s: %v\n", NodeName, err)
	} else {
		var conds []string
		for _, cond := range n.Status.Conditions {
			conds = append(conds, string(cond.Type)+"="+string(cond.Status))
		}
		fmt.Fprintf(&b, "node %s: conditions [%s], taints %v, unschedulable %v\n", n.Name, strings.Join(conds, " "), n.Spec.Taints, n.Spec.Unschedulable)
	}
	evs, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		fmt.Fprintf(&b, "events: %v\n", err)
	} else {
		items := evs.Items
		sort.SliceStable(items, func(i, j int) bool { return eventTime(items[i]).Before(eventTime(items[j])) })
		for _, e := range items {
			fmt.Fprintf(&b, "event %s %s %s/%s %s: %s (x%d)\n", eventTime(e).UTC().Format("15:04:05.000"), e.Type,
				e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message, max(e.Count, 1))
		}
	}
	return b.String()
}

func optional(n *int32) string {
	if n == nil {
		return "unset"
	}
	return fmt.Sprint(*n)
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
