package web

import (
	"context"
	"slices"

	"github.com/hubctl/hubctl/internal/accounts"
)

// teamRow is one team of an organisation with its members.
type teamRow struct {
	Name        string
	Description string
	Members     []string
}

// namespaceAccount is what the namespace page shows only to those who belong to the
// namespace (its user, members with an organisation-wide role, site admins): the
// quota and its use, and for an organisation its teams and members.
type namespaceAccount struct {
	Used    int64
	Quota   int64 // 0: unlimited
	Percent int   // of the quota used, 0..100
	Teams   []teamRow
	Members []string
}

// namespaceAccount returns the namespace's account facts, or nil when the viewer may
// not see them.
func (h *Handler) namespaceAccount(ctx context.Context, v *viewer, ns accounts.Namespace) (*namespaceAccount, error) {
	ok, err := h.member(ctx, v, ns.Name)
	if err != nil || !ok {
		return nil, err
	}
	a := &namespaceAccount{}
	if a.Used, a.Quota, err = h.o.Accounts.Usage(ctx, ns.Name); err != nil {
		return nil, err
	}
	if a.Quota > 0 {
		a.Percent = int(min(100, a.Used*100/a.Quota))
	}
	if !ns.Org {
		return a, nil
	}
	teams, err := h.o.Accounts.ListTeams(ctx, ns.Name)
	if err != nil {
		return nil, err
	}
	for _, t := range teams {
		members, err := h.o.Accounts.ListTeamMembers(ctx, ns.Name, t.Name)
		if err != nil {
			return nil, err
		}
		a.Teams = append(a.Teams, teamRow{Name: t.Name, Description: t.Description, Members: members})
		for _, m := range members {
			if !slices.Contains(a.Members, m) {
				a.Members = append(a.Members, m)
			}
		}
	}
	slices.Sort(a.Members)
	return a, nil
}
