package hubapi

import (
	"net/http"
	"strings"

	"github.com/hubctl/hubctl/internal/accounts"
	"github.com/hubctl/hubctl/internal/auth/authz"
	"github.com/hubctl/hubctl/internal/auth/password"
	"github.com/hubctl/hubctl/internal/auth/scope"
	"github.com/hubctl/hubctl/internal/hubtypes"
)

// userOf is u as the API shows it: never with its password hash.
func userOf(u accounts.User) hubtypes.User {
	return hubtypes.User{Name: u.Name, Email: u.Email, Admin: u.Admin, Robot: u.Robot, Owner: u.Owner,
		Disabled: u.Disabled, CreatedAt: formatTime(u.CreatedAt)}
}

func (a *api) whoami(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	return reply(w, http.StatusOK, userOf(*p.User))
}

func (a *api) listUsers(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	users, err := a.store.ListUsers(r.Context())
	if err != nil {
		return err
	}
	out := make([]hubtypes.User, 0, len(users))
	for _, u := range users {
		out = append(out, userOf(u))
	}
	return reply(w, http.StatusOK, out)
}

func checkPassword(pw string) error {
	if len(pw) < MinPasswordLength {
		return invalid("password must be at least %d characters", MinPasswordLength)
	}
	if len(pw) > 1024 {
		// argon2 takes anything, but a megabyte "password" is a mistake.
		return invalid("password must be at most 1024 bytes")
	}
	return nil
}

func (a *api) createUser(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	var req hubtypes.CreateUserRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	u, err := a.addUser(r, p, req)
	if err != nil {
		return err
	}
	return reply(w, http.StatusCreated, userOf(u))
}

// addUser creates the account req asks for, as POST /api/v1/users does: site
// administrators only, name, email and password checked, audited as user.create.
func (a *api) addUser(r *http.Request, p *authz.Principal, req hubtypes.CreateUserRequest) (accounts.User, error) {
	if err := requireAdmin(p); err != nil {
		return accounts.User{}, err
	}
	if err := accounts.CheckName(req.Name); err != nil {
		return accounts.User{}, err
	}
	if err := accounts.CheckEmail(req.Email); err != nil {
		return accounts.User{}, err
	}
	if err := checkPassword(req.Password); err != nil {
		return accounts.User{}, err
	}
	hash, err := password.Hash(req.Password)
	if err != nil {
		return accounts.User{}, err
	}
	detail := ""
	if req.Admin {
		detail = "site admin"
	}
	return a.store.CreateUser(a.audited(r, p, "user.create", req.Name, detail),
		accounts.User{Name: req.Name, Email: req.Email, PasswordHash: hash, Admin: req.Admin})
}

// self reports whether p is the user named name.
func self(p *authz.Principal, name string) bool { return p.User.Name == name }

func (a *api) getUser(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	name := r.PathValue("name")
	if !self(p, name) {
		if err := requireHubRead(p, scope.HubAccounts); err != nil {
			return err
		}
		if err := requireAdmin(p); err != nil {
			return err
		}
	}
	u, err := a.store.GetUser(r.Context(), name)
	if err != nil {
		return err
	}
	out := userOf(u)
	if out.Usage, err = a.withUsage(r.Context(), p, u.Name); err != nil {
		return err
	}
	return reply(w, http.StatusOK, out)
}

func (a *api) updateUser(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	name := r.PathValue("name")
	isSelf := self(p, name)
	if !isSelf {
		if err := requireAdmin(p); err != nil {
			return err
		}
	}
	var req hubtypes.UpdateUserRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if (req.Admin != nil || req.Disabled != nil) && !p.User.Admin {
		return denied("only site administrators change admin or disabled")
	}
	if isSelf && (req.Admin != nil && !*req.Admin || req.Disabled != nil && *req.Disabled) {
		// Refused so the last administrator cannot lock everyone out by mistake.
		return invalid("you cannot remove your own admin rights or disable yourself; ask another administrator")
	}
	u, err := a.store.GetUser(r.Context(), name)
	if err != nil {
		return err
	}
	var changed []string
	if req.Email != nil {
		if err := accounts.CheckEmail(*req.Email); err != nil {
			return err
		}
		u.Email = *req.Email
		changed = append(changed, "email")
	}
	if req.Password != nil {
		if u.Robot {
			return invalid("robot %s has no password; it signs in with access tokens", u.Name)
		}
		if isSelf {
			if err := requireSession(p, "changing your password"); err != nil {
				return err
			}
			// The current password proves the person at the keyboard is the user, not
			// someone holding their session.
			if req.CurrentPassword == nil {
				return invalid("current_password is required to change your password")
			}
			ok, err := password.Verify(*req.CurrentPassword, u.PasswordHash)
			if err != nil {
				return err
			}
			if !ok {
				return denied("current password is wrong")
			}
		}
		if err := checkPassword(*req.Password); err != nil {
			return err
		}
		if u.PasswordHash, err = password.Hash(*req.Password); err != nil {
			return err
		}
		changed = append(changed, "password")
	}
	if req.Admin != nil {
		u.Admin = *req.Admin
		changed = append(changed, "admin")
	}
	if req.Disabled != nil {
		u.Disabled = *req.Disabled
		changed = append(changed, "disabled")
	}
	if len(changed) > 0 {
		action := "user.update"
		if req.Admin != nil {
			action = "permission.change"
		}
		if err := a.store.UpdateUser(a.audited(r, p, action, u.Name, "changed "+strings.Join(changed, ",")), u); err != nil {
			return err
		}
	}
	return reply(w, http.StatusOK, userOf(u))
}

func (a *api) deleteUser(w http.ResponseWriter, r *http.Request, p *authz.Principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	purge, err := purgeParam(r)
	if err != nil {
		return err
	}
	n, err := a.removeUser(r, p, r.PathValue("name"), purge)
	if err != nil {
		return err
	}
	return deleted(w, purge, n)
}

// removeUser deletes account name (with purge, the repositories of its namespace
// too), as DELETE /api/v1/users/{name} does: site administrators only, never
// themselves, audited as user.delete. It returns how many repositories went.
func (a *api) removeUser(r *http.Request, p *authz.Principal, name string, purge bool) (int, error) {
	if err := requireAdmin(p); err != nil {
		return 0, err
	}
	if self(p, name) {
		return 0, invalid("you cannot delete yourself; ask another administrator")
	}
	// With purge the store puts "purged N repositories" in the entry's detail.
	return a.store.DeleteUser(a.audited(r, p, "user.delete", name, ""), name, purge)
}

// purgeParam reads ?purge=true|false: whether deleting a user or organisation also
// deletes the repositories in its namespace (else a namespace holding any is refused).
func purgeParam(r *http.Request) (bool, error) {
	switch v := r.URL.Query().Get("purge"); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, invalid("purge=%q: want true or false", v)
	}
}

// deleted answers the deletion of a user or organisation: 204, or with purge how many
// repositories went with it.
func deleted(w http.ResponseWriter, purge bool, purged int) error {
	if !purge {
		return noContent(w)
	}
	return reply(w, http.StatusOK, hubtypes.Deleted{PurgedRepositories: purged})
}
