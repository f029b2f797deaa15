package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hubctl/hubctl/internal/deploy"
)

// A release deployed without a hub is locked in its cluster: a coordination.k8s.io
// Lease named hubctl-deploy-SERVICE in the release's namespace. Creating it is
// taking the lock (the API server refuses a second object of one name); its holder
// identity and annotations say who and when; RenewTime + LeaseDurationSeconds says
// until when. A stale one (not renewed for deploy.LockTTL, or held by a process of
// this machine that has ended) is taken over by an update carrying its resource
// version, so of two deploys taking it over at once one wins.

// Annotations of the lease: who holds it.
const (
	leaseBy     = "dev.hubctl.lock.by"
	leaseHost   = "dev.hubctl.lock.host"
	leasePID    = "dev.hubctl.lock.pid"
	leaseNumber = "dev.hubctl.lock.number"
)

// LeaseName is the name of a service's lock lease.
func LeaseName(service string) string { return "hubctl-deploy-" + service }

// Lease is a service's deploy lock in a Kubernetes namespace (a deploy.HostLock).
type Lease struct {
	client    kubernetes.Interface
	namespace string
	now       func() time.Time
}

var _ deploy.HostLock = (*Lease)(nil)

// NewLease returns the lock of spec's release: a lease in its namespace, reached
// with its kubeconfig and context.
func NewLease(spec *deploy.Spec) (*Lease, error) {
	k, err := kubeOf(spec)
	if err != nil {
		return nil, err
	}
	g := newGetter(k)
	ns := k.Namespace
	if ns == "" {
		if ns, _, err = g.loader.Namespace(); err != nil {
			return nil, fmt.Errorf("kubeconfig: %w", err)
		}
	}
	cfg, err := g.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return NewLeaseWith(c, ns), nil
}

// NewLeaseWith returns the lock kept in namespace through client.
func NewLeaseWith(client kubernetes.Interface, namespace string) *Lease {
	return &Lease{client: client, namespace: namespace, now: time.Now}
}

func (l *Lease) leases() interface {
	Get(context.Context, string, metav1.GetOptions) (*coordv1.Lease, error)
	Create(context.Context, *coordv1.Lease, metav1.CreateOptions) (*coordv1.Lease, error)
	Update(context.Context, *coordv1.Lease, metav1.UpdateOptions) (*coordv1.Lease, error)
	Delete(context.Context, string, metav1.DeleteOptions) error
} {
	return l.client.CoordinationV1().Leases(l.namespace)
}

// identity is the lease's holder identity for holder: one process's one lock.
func identity(h deploy.LockHolder) string {
	return fmt.Sprintf("%s/%d/%d", h.Host, h.PID, h.Acquired.UnixNano())
}

// fill writes holder into lease, held from now for deploy.LockTTL.
func (l *Lease) fill(lease *coordv1.Lease, service string, holder deploy.LockHolder) {
	id := identity(holder)
	ttl := int32(deploy.LockTTL / time.Second)
	now := metav1.NewMicroTime(l.now())
	lease.Name = LeaseName(service)
	lease.Namespace = l.namespace
	if lease.Labels == nil {
		lease.Labels = map[string]string{}
	}
	lease.Labels[deploy.LabelService] = service
	lease.Labels[deploy.LabelRole] = deploy.RoleLock
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[leaseBy] = holder.By
	lease.Annotations[leaseHost] = holder.Host
	lease.Annotations[leasePID] = strconv.Itoa(holder.PID)
	lease.Annotations[leaseNumber] = strconv.Itoa(holder.Number)
	acquired := metav1.NewMicroTime(holder.Acquired)
	lease.Spec = coordv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: &ttl, AcquireTime: &acquired, RenewTime: &now}
}

// holderOf reads who holds lease.
func holderOf(lease *coordv1.Lease) deploy.LockHolder {
	a := lease.Annotations
	h := deploy.LockHolder{By: a[leaseBy], Host: a[leaseHost]}
	h.PID, _ = strconv.Atoi(a[leasePID])
	h.Number, _ = strconv.Atoi(a[leaseNumber])
	if t := lease.Spec.AcquireTime; t != nil {
		h.Acquired = t.Time
	}
	if t := lease.Spec.RenewTime; t != nil && lease.Spec.LeaseDurationSeconds != nil {
		h.Expires = t.Add(time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second)
	}
	return h
}

func held(lease *coordv1.Lease, holder deploy.LockHolder) bool {
	return lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity == identity(holder)
}

// staleLease reports whether a lock may be taken over: not renewed in time, or
// held by a process of this machine that has ended.
func staleLease(h deploy.LockHolder, now time.Time) bool {
	if h.Expires.IsZero() || now.After(h.Expires) {
		return true
	}
	me, err := os.Hostname()
	if err != nil || h.Host != me || h.PID <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(h.PID, 0), syscall.ESRCH)
}

func (l *Lease) what(service string) string {
	return fmt.Sprintf("lease %s/%s", l.namespace, LeaseName(service))
}

// Lock takes the service's lease for holder; held by another and not stale:
// *deploy.LockedError.
func (l *Lease) Lock(ctx context.Context, service string, holder deploy.LockHolder) error {
	for try := 0; try < 3; try++ {
		lease := &coordv1.Lease{}
		l.fill(lease, service, holder)
		_, err := l.leases().Create(ctx, lease, metav1.CreateOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("lock: create %s: %w", l.what(service), err)
		}
		cur, err := l.leases().Get(ctx, LeaseName(service), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // released meanwhile
		}
		if err != nil {
			return fmt.Errorf("lock: read %s: %w", l.what(service), err)
		}
		if held(cur, holder) {
			return nil
		}
		if !staleLease(holderOf(cur), l.now()) {
			return &deploy.LockedError{Service: service, Holder: holderOf(cur)}
		}
		// Taken over with its resource version: of two takers, one wins.
		l.fill(cur, service, holder)
		if _, err := l.leases().Update(ctx, cur, metav1.UpdateOptions{}); err == nil {
			return nil
		} else if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return fmt.Errorf("lock: take over stale %s: %w", l.what(service), err)
		}
	}
	cur, err := l.leases().Get(ctx, LeaseName(service), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("lock: read %s: %w", l.what(service), err)
	}
	return &deploy.LockedError{Service: service, Holder: holderOf(cur)}
}

// Renew extends holder's lease to now + deploy.LockTTL; a lease another took
// over answers *deploy.LockedError.
func (l *Lease) Renew(ctx context.Context, service string, holder deploy.LockHolder) error {
	cur, err := l.leases().Get(ctx, LeaseName(service), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("renew lock: %w", err)
	}
	if !held(cur, holder) {
		return &deploy.LockedError{Service: service, Holder: holderOf(cur)}
	}
	now := metav1.NewMicroTime(l.now())
	cur.Spec.RenewTime = &now
	if _, err := l.leases().Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("renew lock: %w", err)
	}
	return nil
}

// Unlock deletes holder's lease; one another holds now is left alone.
func (l *Lease) Unlock(ctx context.Context, service string, holder deploy.LockHolder) error {
	cur, err := l.leases().Get(ctx, LeaseName(service), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	if !held(cur, holder) {
		return nil
	}
	rv := cur.ResourceVersion
	err = l.leases().Delete(ctx, LeaseName(service), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("unlock: %w", err)
	}
	return nil
}

// Break deletes the service's lease whoever holds it.
func (l *Lease) Break(ctx context.Context, service string) error {
	err := l.leases().Delete(ctx, LeaseName(service), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("break lock: %w", err)
	}
	return nil
}
