// Package hubtypes holds the request and response bodies of the hub's JSON API under
// /api/v1/, as docs/api.md documents them. It is the one definition of that wire
// format: the server (internal/hubapi) and the client (internal/hubclient) both use it,
// so neither imports the other. It holds value types only; validation lives with the
// server.
package hubtypes

import "encoding/json"

// User is an account as the API shows it: never with its password hash.
type User struct {
	Name      string `json:"name"`
	Email     string `json:"email"`
	Admin     bool   `json:"admin"`
	Robot     bool   `json:"robot"`
	Owner     string `json:"owner,omitempty"`
	Disabled  bool   `json:"disabled"`
	CreatedAt string `json:"created_at,omitempty"`
	// Usage is the storage of the user's personal namespace, shown to the user and to
	// site administrators.
	Usage *Usage `json:"usage,omitempty"`
}

// CreateUserRequest is the body of POST /api/v1/users.
type CreateUserRequest struct {
	Name     string `json:"name"`
	Email    string `json:"email,omitempty"`
	Password string `json:"password"`
	Admin    bool   `json:"admin,omitempty"`
}

// UpdateUserRequest is the body of PATCH /api/v1/users/{name}: a partial update in
// which nil (absent) fields stay as they are.
type UpdateUserRequest struct {
	Email    *string `json:"email,omitempty"`
	Password *string `json:"password,omitempty"`
	// CurrentPassword is required when users change their own password.
	CurrentPassword *string `json:"current_password,omitempty"`
	Admin           *bool   `json:"admin,omitempty"`
	Disabled        *bool   `json:"disabled,omitempty"`
}

// Org is an organisation as the API shows it.
type Org struct {
	Name              string `json:"name"`
	DefaultVisibility string `json:"default_visibility"`
	CreatedAt         string `json:"created_at,omitempty"`
	// Usage is the organisation's storage, shown to its administrators and to site
	// administrators.
	Usage *Usage `json:"usage,omitempty"`
}

// Usage is a namespace's storage: the bytes of the distinct blobs linked to its
// repositories (each counted once) and its quota. It is the answer to GET and PUT
// under /api/v1/namespaces/{ns}/.
type Usage struct {
	Namespace string `json:"namespace"`
	UsedBytes int64  `json:"used_bytes"`
	// QuotaBytes is 0 when the namespace is unlimited.
	QuotaBytes int64 `json:"quota_bytes"`
}

// SetQuotaRequest is the body of PUT /api/v1/namespaces/{ns}/quota; Bytes <= 0
// removes the quota.
type SetQuotaRequest struct {
	Bytes int64 `json:"bytes"`
}

// CreateOrgRequest is the body of POST /api/v1/orgs.
type CreateOrgRequest struct {
	Name string `json:"name"`
	// DefaultVisibility is "private" (the default when empty) or "public".
	DefaultVisibility string `json:"default_visibility,omitempty"`
}

// UpdateOrgRequest is the body of PATCH /api/v1/orgs/{org}.
type UpdateOrgRequest struct {
	DefaultVisibility string `json:"default_visibility"`
}

// Team is a team of an organisation as the API shows it.
type Team struct {
	Org         string `json:"org"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	CreatedAt   string `json:"created_at,omitempty"`
}

// CreateTeamRequest is the body of POST /api/v1/orgs/{org}/teams.
type CreateTeamRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Grant is a team's role on its whole organisation (Repository "") or one repository;
// it is also the body of PUT …/grants, where role "none" removes the grant.
type Grant struct {
	Repository string `json:"repository"`
	Role       string `json:"role"`
}

// CreateRobotRequest is the body of POST /api/v1/orgs/{org}/robots: the robot's short
// name (the account is <org>.<name>) and its first token, as in CreateTokenRequest.
type CreateRobotRequest struct {
	Name           string   `json:"name"`
	Scopes         []string `json:"scopes"`
	ExpiresInDays  int      `json:"expires_in_days"`
	ExpiresInHours int      `json:"expires_in_hours,omitempty"`
}

// RotateRobotRequest is the body of POST /api/v1/orgs/{org}/robots/{name}/token: the
// new token's scopes (default: those of the token it replaces) and lifetime.
type RotateRobotRequest struct {
	Scopes         []string `json:"scopes,omitempty"`
	ExpiresInDays  int      `json:"expires_in_days"`
	ExpiresInHours int      `json:"expires_in_hours,omitempty"`
}

// RobotAccount is one robot of GET /api/v1/orgs/{org}/robots: the account and its
// tokens, without secrets.
type RobotAccount struct {
	User   User    `json:"user"`
	Tokens []Token `json:"tokens"`
}

// Robot is the answer to creating a robot: the account and its first token, whose
// secret is shown this once.
type Robot struct {
	User  User         `json:"user"`
	Token CreatedToken `json:"token"`
}

// Repository is a repository's settings as the API shows them.
type Repository struct {
	Name       string `json:"name"`
	Visibility string `json:"visibility"`
}

// UpdateRepositoryRequest is the body of PATCH /api/v1/repositories/{name…}.
type UpdateRepositoryRequest struct {
	Visibility string `json:"visibility"`
}

// Token is an access token as listed: never its secret or hash.
type Token struct {
	Name       string   `json:"name"`
	Scopes     []string `json:"scopes"`
	ExpiresAt  string   `json:"expires_at,omitempty"`
	LastUsedAt string   `json:"last_used_at,omitempty"`
	CreatedAt  string   `json:"created_at,omitempty"`
	RevokedAt  string   `json:"revoked_at,omitempty"`
	// Active is false for revoked and expired tokens.
	Active bool `json:"active"`
}

// CreateTokenRequest is the body of POST /api/v1/tokens.
type CreateTokenRequest struct {
	Name string `json:"name"`
	// Scopes are access-token patterns such as "repository:team/app:pull,push",
	// "repository:team/*:pull" or "registry:catalog:*".
	Scopes []string `json:"scopes"`
	// ExpiresInDays is the lifetime; 0 means the token never expires.
	ExpiresInDays int `json:"expires_in_days"`
	// ExpiresInHours is the lifetime in hours, for tokens that live less than days;
	// at most one of the two is set.
	ExpiresInHours int `json:"expires_in_hours,omitempty"`
}

// CreatedToken is the answer to creating a token: the only time its secret is shown.
type CreatedToken struct {
	Name      string   `json:"name"`
	Token     string   `json:"token"`
	Scopes    []string `json:"scopes"`
	ExpiresAt string   `json:"expires_at,omitempty"`
}

// Session is a sign-in that lasts (a refresh session: docker's identity token), as
// listed: never its secret or hash.
type Session struct {
	ID         int64  `json:"id"`
	Kind       string `json:"kind"`
	CreatedAt  string `json:"created_at"`
	LastUsedAt string `json:"last_used_at,omitempty"`
	ExpiresAt  string `json:"expires_at"`
	RevokedAt  string `json:"revoked_at,omitempty"`
	Remote     string `json:"remote,omitempty"`
	Client     string `json:"client,omitempty"`
	// Active is false for revoked and expired sessions.
	Active bool `json:"active"`
}

// Deleted is the answer to deleting a user or organisation with ?purge=true: how many
// repositories went with it.
type Deleted struct {
	PurgedRepositories int `json:"purged_repositories"`
}

// AuditEntry is one line of the audit log as the API shows it.
type AuditEntry struct {
	ID     int64  `json:"id"`
	Time   string `json:"time"`
	Actor  string `json:"actor"`
	Action string `json:"action"`
	Target string `json:"target,omitempty"`
	Remote string `json:"remote,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// AuditPage is the answer to GET /api/v1/audit: a page of the audit log, newest
// first; Next, when not zero, is the `before` of the following page.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Next    int64        `json:"next,omitempty"`
}

// Event is one event of the hub's outbox as GET /api/v1/events shows it
// (docs/design/events.md). Consumers dedupe on ID; Cursor is its position in the
// feed, the `since` that continues after it.
type Event struct {
	Seq            int64          `json:"seq"`
	Cursor         string         `json:"cursor"`
	ID             string         `json:"id"`
	Type           string         `json:"type"`
	Time           string         `json:"time"`
	RepositoryID   int64          `json:"repositoryId,omitempty"`
	Repository     string         `json:"repository,omitempty"`
	Digest         string         `json:"digest,omitempty"`
	PreviousDigest string         `json:"previousDigest,omitempty"`
	Tag            string         `json:"tag,omitempty"`
	MediaType      string         `json:"mediaType,omitempty"`
	ArtifactType   string         `json:"artifactType,omitempty"`
	Kind           string         `json:"kind,omitempty"`
	Platforms      []string       `json:"platforms,omitempty"`
	Size           int64          `json:"size,omitempty"`
	Visibility     string         `json:"visibility,omitempty"`
	Chart          string         `json:"chart,omitempty"`
	Version        string         `json:"version,omitempty"`
	Detail         map[string]any `json:"detail,omitempty"`
	Actor          string         `json:"actor,omitempty"`
	Remote         string         `json:"remote,omitempty"`
	RequestID      string         `json:"requestId,omitempty"`
}

// EventPage is the answer to GET /api/v1/events: events in feed order after `since`,
// and Next, the `since` of the following request (the same cursor when there were
// none, so a follower polls with it).
type EventPage struct {
	Events []Event `json:"events"`
	Next   string  `json:"next"`
}

// Webhook is a webhook as the API shows it: never its secret (shown once, in
// CreateWebhookResponse) nor its header values (only their names).
type Webhook struct {
	ID     string `json:"id"`
	Scope  string `json:"scope"`            // site, namespace or repository
	Target string `json:"target,omitempty"` // the namespace or repository
	URL    string `json:"url"`
	// Events are the event types it wants; empty means all.
	Events       []string `json:"events,omitempty"`
	Repositories []string `json:"repositories,omitempty"` // globs, or re:EXPR (RE2, whole name)
	Tags         []string `json:"tags,omitempty"`         // globs, or re:EXPR (RE2, whole name)
	Format       string   `json:"format"`
	Headers      []string `json:"headers,omitempty"` // names of the custom headers
	Enabled      bool     `json:"enabled"`
	// DisabledReason says why the hub turned the hook off (410 Gone, failures).
	DisabledReason string `json:"disabledReason,omitempty"`
	Failures       int    `json:"failures,omitempty"`
	CreatedBy      string `json:"createdBy,omitempty"`
	CreatedAt      string `json:"createdAt"`
	// PreviousSecretExpiresAt is when the secret a rotation replaced stops signing
	// deliveries; empty when there is none.
	PreviousSecretExpiresAt string `json:"previousSecretExpiresAt,omitempty"`
	// Kind is "webhook" (POST the events) or "dragonfly" (create preheat jobs).
	Kind string `json:"kind"`
	// Dragonfly is a dragonfly hook's settings (never its token).
	Dragonfly *WebhookDragonfly `json:"dragonfly,omitempty"`
}

// WebhookDragonfly is a dragonfly hook's settings (docs/webhooks.md, "Dragonfly
// preheat"); the hook's URL is the Dragonfly manager's address.
type WebhookDragonfly struct {
	// API is "oapi" (Dragonfly 2.1+, /oapi/v1/jobs; the default) or "v1" (2.0.x).
	API string `json:"api,omitempty"`
	// Scope is single_seed_peer (the default), all_seed_peers or all_peers.
	Scope string `json:"scope,omitempty"`
	// SchedulerClusterIDs are the scheduler clusters to preheat in; none means all.
	SchedulerClusterIDs []uint64 `json:"schedulerClusterIds,omitempty"`
	// Platform picks one image of an index, e.g. linux/amd64.
	Platform string `json:"platform,omitempty"`
	// Timeout is how long a job is followed, a Go duration ("30m", the default).
	Timeout string `json:"timeout,omitempty"`
	// Token is the manager's personal access token: given to create, stored sealed,
	// never shown.
	Token string `json:"token,omitempty"`
	// HasToken says, when a hook is shown, that a token is stored.
	HasToken bool `json:"hasToken,omitempty"`
}

// CreateWebhookRequest is the body of POST /api/v1/webhooks.
type CreateWebhookRequest struct {
	Scope        string   `json:"scope"`
	Target       string   `json:"target,omitempty"`
	URL          string   `json:"url"`
	Events       []string `json:"events,omitempty"`
	Repositories []string `json:"repositories,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	// Format is the body's format: hubctl (the default), cloudevents, distribution or
	// harbor (docs/webhooks.md, Formats).
	Format string `json:"format,omitempty"`
	// Secret is the signing secret ("whsec_" and base64 of 24 to 64 bytes); empty
	// means the hub makes one.
	Secret string `json:"secret,omitempty"`
	// Headers are custom headers sent with every delivery, stored sealed.
	Headers map[string]string `json:"headers,omitempty"`
	// Disabled creates the hook turned off.
	Disabled bool `json:"disabled,omitempty"`
	// Kind is "webhook" (the default) or "dragonfly", which needs Dragonfly.
	Kind string `json:"kind,omitempty"`
	// Dragonfly configures a dragonfly hook.
	Dragonfly *WebhookDragonfly `json:"dragonfly,omitempty"`
}

// CreateWebhookResponse answers POST /api/v1/webhooks and POST
// /api/v1/webhooks/{id}/rotate-secret: the hook and its (new) secret, which is shown
// this once.
type CreateWebhookResponse struct {
	Webhook
	Secret string `json:"secret"`
}

// WebhookDelivery is one event sent (or to be sent) to a webhook, with its attempts.
type WebhookDelivery struct {
	ID         int64  `json:"id"`
	Event      string `json:"event"` // the event id, the webhook-id header
	Type       string `json:"type"`
	Repository string `json:"repository,omitempty"`
	// State is pending, delivered, failed or skipped (the hook's owner may no longer
	// read the repository).
	State      string           `json:"state"`
	Attempts   int              `json:"attempts"`
	NextAt     string           `json:"nextAt,omitempty"`
	LastStatus int              `json:"lastStatus,omitempty"`
	LastError  string           `json:"lastError,omitempty"`
	CreatedAt  string           `json:"createdAt"`
	Log        []WebhookAttempt `json:"log,omitempty"`
	// Job is the Dragonfly preheat job of a dragonfly hook's delivery; State is
	// "running" while it is followed.
	Job *WebhookJob `json:"job,omitempty"`
}

// WebhookJob is a Dragonfly preheat job as a delivery knows it.
type WebhookJob struct {
	ID uint64 `json:"id"`
	// State is the job's state when last polled: PENDING, RECEIVED, STARTED, RETRY, SUCCESS or FAILURE
	State string `json:"state,omitempty"`
	// Deadline is when the hub stops following it.
	Deadline string `json:"deadline,omitempty"`
}

// WebhookAttempt is one try of a delivery: what was sent (custom header values
// redacted) and the head of the answer.
type WebhookAttempt struct {
	Time            string            `json:"time"`
	DurationMillis  int64             `json:"durationMs"`
	Status          int               `json:"status,omitempty"`
	Error           string            `json:"error,omitempty"`
	RequestHeaders  map[string]string `json:"requestHeaders,omitempty"`
	ResponseHeaders map[string]string `json:"responseHeaders,omitempty"`
	ResponseBody    string            `json:"responseBody,omitempty"`
}

// UpdateWebhookRequest is the body of PATCH /api/v1/webhooks/{id}, a JSON merge
// patch: a field left out keeps its value, null resets the lists (events, filters,
// headers) to none. The scope and target of a hook cannot change.
type UpdateWebhookRequest struct {
	URL          Optional[string]   `json:"url,omitzero"`
	Events       Optional[[]string] `json:"events,omitzero"`
	Repositories Optional[[]string] `json:"repositories,omitzero"`
	Tags         Optional[[]string] `json:"tags,omitzero"`
	Format       Optional[string]   `json:"format,omitzero"`
	// Headers replaces all the custom headers (sealed as at creation); {} or null
	// removes them.
	Headers Optional[map[string]string] `json:"headers,omitzero"`
	// Enabled turns the hook on (clearing its failures) or off.
	Enabled Optional[bool] `json:"enabled,omitzero"`
}

// Optional is a field of a JSON merge patch: Set when the field was given, Null when
// it was given as null. Its zero value is a field left out (omitzero).
type Optional[T any] struct {
	Set, Null bool
	Value     T
}

// Some is an Optional set to v.
func Some[T any](v T) Optional[T] { return Optional[T]{Set: true, Value: v} }

// UnmarshalJSON records that the field was given, and whether as null.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set, o.Null = true, string(b) == "null"
	if o.Null {
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// MarshalJSON writes the value, or null.
func (o Optional[T]) MarshalJSON() ([]byte, error) {
	if o.Null || !o.Set {
		return []byte("null"), nil
	}
	return json.Marshal(o.Value)
}

// IsZero reports a field left out, for omitzero.
func (o Optional[T]) IsZero() bool { return !o.Set }

// RotateWebhookSecretRequest is the optional body of POST
// /api/v1/webhooks/{id}/rotate-secret.
type RotateWebhookSecretRequest struct {
	// Secret is the new signing secret ("whsec_" and base64 of 24 to 64 bytes); empty
	// means the hub makes one.
	Secret string `json:"secret,omitempty"`
	// ExpirePreviousIn is how long deliveries stay signed with the replaced secret too,
	// a Go duration ("24h", "90m"): default 24h, at most 168h (7 days), "0" drops it now.
	ExpirePreviousIn string `json:"expire_previous_in,omitempty"`
}

// Workflow is a stored workflow as the API shows it (GET /api/v1/workflows…); Source,
// the YAML applied, only when one workflow is read.
type Workflow struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Digest    string `json:"digest"`
	AppliedBy string `json:"appliedBy,omitempty"`
	Enabled   bool   `json:"enabled"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
	Source    string `json:"source,omitempty"`
	// HookURL is the path of the workflow's incoming URL (on: webhook); HookSecret its
	// signing secret, only in the answer that made it (first apply, rotation).
	HookURL    string `json:"hookUrl,omitempty"`
	HookSecret string `json:"hookSecret,omitempty"`
}

// WorkflowError is one problem of a refused workflow file, at its line and column.
type WorkflowError struct {
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
}

// RunWorkflowRequest starts a manual run (POST /api/v1/workflows/{ns}/{name}/runs).
type RunWorkflowRequest struct {
	Inputs map[string]any `json:"inputs,omitempty"`
}

// WorkflowRun is one run of a workflow; Jobs only when one run is read.
type WorkflowRun struct {
	ID              int64          `json:"id"`
	Namespace       string         `json:"namespace"`
	Workflow        string         `json:"workflow"`
	Number          int64          `json:"number"`
	Digest          string         `json:"digest"`
	Trigger         string         `json:"trigger"`
	EventID         string         `json:"eventId,omitempty"`
	Inputs          map[string]any `json:"inputs,omitempty"`
	State           string         `json:"state"`
	Result          string         `json:"result,omitempty"`
	Attempt         int            `json:"attempt"`
	CancelRequested bool           `json:"cancelRequested,omitempty"`
	QueuedAt        string         `json:"queuedAt,omitempty"`
	StartedAt       string         `json:"startedAt,omitempty"`
	FinishedAt      string         `json:"finishedAt,omitempty"`
	Jobs            []WorkflowJob  `json:"jobs,omitempty"`
}

// WorkflowJob is one job run of a run, with its steps and outputs.
type WorkflowJob struct {
	ID      int64             `json:"id"`
	Job     string            `json:"job"`
	Key     string            `json:"key,omitempty"`
	Display string            `json:"display"`
	Matrix  map[string]string `json:"matrix,omitempty"`
	State   string            `json:"state"`
	Result  string            `json:"result,omitempty"`
	// Attempt is how many times the job run was started (retries and reruns; a
	// re-attach after a hub restart is not a new start).
	Attempt    int               `json:"attempt"`
	Outputs    map[string]string `json:"outputs,omitempty"`
	Error      string            `json:"error,omitempty"`
	StartedAt  string            `json:"startedAt,omitempty"`
	FinishedAt string            `json:"finishedAt,omitempty"`
	Steps      []WorkflowStep    `json:"steps"`
	// Approval is set for a job run that waited for approval.
	Approval *WorkflowApproval `json:"approval,omitempty"`
}

// WorkflowStep is one step of a job run.
type WorkflowStep struct {
	Index    int    `json:"index"`
	Name     string `json:"name"`
	State    string `json:"state"`
	ExitCode int    `json:"exitCode"`
	// Starts is how many times the step was started: once per attempt of its job run
	// (a re-attach after a hub restart does not start it again).
	Starts     int    `json:"starts"`
	LogBytes   int64  `json:"logBytes"`
	StartedAt  string `json:"startedAt,omitempty"`
	FinishedAt string `json:"finishedAt,omitempty"`
}

// WorkflowLogs is a page of one job run's log (GET /api/v1/runs/{id}/logs): the chunks
// after the cursor asked for, Next the cursor to ask with next, Done once the job run
// has ended and every chunk was read.
type WorkflowLogs struct {
	Job    int64              `json:"job"`
	Chunks []WorkflowLogChunk `json:"chunks"`
	Next   int64              `json:"next"`
	Done   bool               `json:"done"`
}

// WorkflowLogChunk is one stored piece of a step's log.
type WorkflowLogChunk struct {
	Seq     int64  `json:"seq"`
	Step    int    `json:"step"`
	Attempt int    `json:"attempt"`
	Data    string `json:"data"`
	At      string `json:"at"`
}

// WorkflowApproval is the approval state of a job run whose environment names
// approvers.
type WorkflowApproval struct {
	Environment string             `json:"environment,omitempty"`
	Approvers   []string           `json:"approvers,omitempty"`
	Required    int                `json:"required"`
	Deadline    string             `json:"deadline,omitempty"`
	Approved    bool               `json:"approved"`
	Decisions   []WorkflowDecision `json:"decisions"`
}

// WorkflowDecision is one account's decision on a job run.
type WorkflowDecision struct {
	Account  string `json:"account"`
	Decision string `json:"decision"` // approve or reject
	Comment  string `json:"comment,omitempty"`
	At       string `json:"at"`
}

// ApprovalRequest is the body of POST /api/v1/runs/{id}/jobs/{job}/approve|reject.
type ApprovalRequest struct {
	Comment string `json:"comment,omitempty"`
}

// TagMove is one entry of a tag's history as GET /api/v1/repositories/{name…}/tags/{tag}/history
// shows it: the tag was pointed at Digest (a push or a restore) from PreviousDigest,
// or deleted (Digest empty). Action is "create" (a new tag), "move" or "delete".
type TagMove struct {
	ID             int64  `json:"id"`
	Time           string `json:"time"`
	Action         string `json:"action"`
	Digest         string `json:"digest,omitempty"`
	PreviousDigest string `json:"previous_digest,omitempty"`
	// Actor is who moved it, as the change's events name them; empty when unknown.
	Actor string `json:"actor,omitempty"`
}

// TagHistoryPage is the answer to GET …/tags/{tag}/history: moves newest first; Next,
// when not zero, is the `before` of the following page.
type TagHistoryPage struct {
	Repository string    `json:"repository"`
	Tag        string    `json:"tag"`
	Moves      []TagMove `json:"moves"`
	Next       int64     `json:"next,omitempty"`
}

// RestoreTagRequest is the body of POST …/tags/{tag}/restore: a digest of the tag's
// history to point the tag back at.
type RestoreTagRequest struct {
	Digest string `json:"digest"`
}

// TagRestore is the answer to POST …/tags/{tag}/restore: the tag now names Digest
// and named PreviousDigest before (equal when it already named Digest).
type TagRestore struct {
	Repository     string `json:"repository"`
	Tag            string `json:"tag"`
	Digest         string `json:"digest"`
	PreviousDigest string `json:"previous_digest,omitempty"`
}
