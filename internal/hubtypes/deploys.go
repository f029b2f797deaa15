package hubtypes

// DeployRecord is one deploy of a service (/api/v1/deploys/{ns}/{service}…): what
// was deployed (the spec, which names secrets but never holds their values, and the
// pinned digests), where, by whom, when and how it ended. Lists leave Spec out.
type DeployRecord struct {
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	// Number counts the service's deploys from 1.
	Number int `json:"number"`
	// Spec is the deploy file as deployed; empty in lists.
	Spec string `json:"spec,omitempty"`
	// Digests are pinned references by what they are for: "service", or an
	// accessory's name.
	Digests map[string]string `json:"digests"`
	// Target is "docker" or "kubernetes"; Hosts the engines (or the kube context).
	Target string   `json:"target"`
	Hosts  []string `json:"hosts"`
	By     string   `json:"by"`
	// Started and Finished are RFC 3339 times of the hub's database clock;
	// Finished is empty while the deploy runs.
	Started  string `json:"started"`
	Finished string `json:"finished,omitempty"`
	// Outcome is running, succeeded, failed or rolled_back.
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
	// RollbackOf is the number of the deploy a rollback re-deployed.
	RollbackOf int `json:"rollbackOf,omitempty"`
}

// DeployPage is a page of a service's history, newest first; Next, when not 0, is
// the before= of the next page.
type DeployPage struct {
	Deploys []DeployRecord `json:"deploys"`
	Next    int            `json:"next,omitempty"`
}

// DeployLock says who holds a service's deploy lock; it is also the detail of the
// DEPLOY_LOCKED error that refuses a second deploy.
type DeployLock struct {
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	By        string `json:"by"`
	Host      string `json:"host"`
	PID       int    `json:"pid"`
	// Number is the deploy holding the lock.
	Number   int    `json:"number"`
	Acquired string `json:"acquired"`
	// Expires is when the lock goes stale unless renewed (RFC 3339, hub's clock).
	Expires string `json:"expires"`
}

// BeginDeployRequest is the body of POST /api/v1/deploys/{ns}/{service}: the record
// of the deploy about to run, and who runs it (the lock's holder).
type BeginDeployRequest struct {
	Spec       string            `json:"spec"`
	Digests    map[string]string `json:"digests"`
	Target     string            `json:"target"`
	Hosts      []string          `json:"hosts,omitempty"`
	RollbackOf int               `json:"rollbackOf,omitempty"`
	// Host and PID say where `hubctl deploy` runs, for the lock's holder.
	Host string `json:"host"`
	PID  int    `json:"pid"`
}

// BeginDeployResponse answers a begun deploy: its record (Number set) and the lock
// it holds until it finishes; renew it every 10 s.
type BeginDeployResponse struct {
	Deploy DeployRecord `json:"deploy"`
	Lock   DeployLock   `json:"lock"`
}

// TakeDeployLockRequest is the body of POST /api/v1/deploys/{ns}/{service}/lock
// (take or renew the lock for work that is no deploy: `hubctl deploy down`) and of
// POST …/lock/release: where the holder runs.
type TakeDeployLockRequest struct {
	Host string `json:"host"`
	PID  int    `json:"pid"`
}

// FinishDeployRequest is the body of PATCH /api/v1/deploys/{ns}/{service}/{number}.
type FinishDeployRequest struct {
	// Outcome is succeeded, failed or rolled_back.
	Outcome string `json:"outcome"`
	// Error says why a deploy failed; at most 4 KiB.
	Error string `json:"error,omitempty"`
}

// DeployPullTokenRequest is the body of POST /api/v1/deploys/{ns}/{service}/pull-token:
// the running deploy the token is for, and the repositories it pulls.
type DeployPullTokenRequest struct {
	Number       int      `json:"number"`
	Repositories []string `json:"repositories"`
}

// DeployPullToken is a short-lived registry token that pulls Repositories only, for
// the Docker engines of one deploy. Token is a credential: never log or store it.
type DeployPullToken struct {
	Token        string   `json:"token"`
	ExpiresAt    string   `json:"expiresAt"`
	Repositories []string `json:"repositories"`
}

// DeploySecretsRequest is the body of POST /api/v1/deploys/{ns}/{service}/secrets:
// the names of the namespace's secrets the deploy needs.
type DeploySecretsRequest struct {
	Names []string `json:"names"`
}

// DeploySecrets answers the values of the secrets asked for, by name. They are
// credentials: never log or store them.
type DeploySecrets struct {
	Values map[string]string `json:"values"`
}
