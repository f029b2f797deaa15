// Package workflow is the hub's workflows (issue 19, docs/workflows.md): the YAML a
// workflow is written in, its strict decoding and validation (every error with its
// line and column), the DAG of its jobs, the expressions of `if:` and `${{ … }}`, and
// the expansion of matrices. Runs, the scheduler and the executors build on it
// (docs/design/workflows.md); this package does no I/O.
package workflow

import (
	// Schedules name IANA time zones; the hub must read them the same on a host without
	// tzdata.
	_ "time/tzdata"

	"regexp"
	"time"

	"github.com/robfig/cron/v3"
)

// Bounds of a workflow file.
const (
	MaxFileSize        = 1 << 20 // bytes
	MaxJobs            = 256
	MaxCombinations    = 256 // runs of one job after its matrix is expanded
	MaxStepsPerJob     = 100
	MaxServicesPerJob  = 10
	MaxInputs          = 50
	MaxRetries         = 10
	MaxTimeout         = 72 * time.Hour
	DefaultTimeout     = time.Hour
	MaxQueue           = 100
	MaxApprovers       = 50
	MaxApprovalTimeout = 30 * 24 * time.Hour
	DefaultApprovalTTL = 24 * time.Hour
	// maxProduct bounds a matrix's product before its exclusions, so a file cannot
	// make the validator enumerate billions of combinations to exclude them.
	maxProduct = 4096
)

// Names. Job, input, output and matrix names are used in expressions
// (needs.build.outputs.version, inputs.debug, matrix.os), so all but job names are
// identifiers; a job name with a hyphen is read as needs["build-image"].
var (
	workflowNameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$`)
	jobNameRe      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,63}$`)
	identRe        = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	envNameRe      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	serviceNameRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	artifactNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// Workflow is one decoded and validated workflow file.
type Workflow struct {
	Name        string
	On          Triggers
	Env         []EnvVar
	Concurrency *Concurrency
	Permissions Permissions
	// Jobs are in file order; Order names them in a topological order of their needs
	// (file order among jobs that do not depend on each other).
	Jobs  []*Job
	Order []string

	byName map[string]*Job
}

// ValidName reports whether s may name a workflow: lower-case letters, digits, '.',
// '_' and '-', starting and ending with a letter or digit, at most 64 characters.
func ValidName(s string) bool { return workflowNameRe.MatchString(s) }

// Job returns the job called name, or nil.
func (w *Workflow) Job(name string) *Job {
	if w.byName == nil {
		w.byName = make(map[string]*Job, len(w.Jobs))
		for _, j := range w.Jobs {
			w.byName[j.Name] = j
		}
	}
	return w.byName[name]
}

// Runs is the number of job runs one run of w makes once every matrix is expanded.
func (w *Workflow) Runs() int {
	n := 0
	for _, j := range w.Jobs {
		n += len(j.Runs)
	}
	return n
}

// EnvVar is one NAME: value of an env map, in file order. Value may hold ${{ … }}.
type EnvVar struct {
	Name  string
	Value string
	Pos   Pos
}

// Triggers are the `on:` of a workflow; nil or empty ones are absent.
type Triggers struct {
	Push     *PushTrigger
	Tag      *TagTrigger
	Schedule []Schedule
	Webhook  *WebhookTrigger
	Manual   *ManualTrigger
	Workflow *WorkflowTrigger
}

// PushTrigger starts a run when a manifest is pushed (event manifest.pushed) whose
// repository, tag and artifact type match; an empty list matches any.
type PushTrigger struct {
	Repositories []Pattern
	Tags         []Pattern
	// ArtifactTypes are kinds (image, chart, other) or artifact/config media types.
	ArtifactTypes []string
}

// TagTrigger starts a run when a matching tag is deleted (event tag.deleted).
type TagTrigger struct {
	Repositories []Pattern
	Tags         []Pattern
}

// Schedule starts a run on a cron schedule (robfig/cron: five fields or a descriptor).
type Schedule struct {
	Cron     string
	Timezone string // an IANA name; "" is UTC
	Pos      Pos
	// Spec is the parsed schedule, in Timezone.
	Spec cron.Schedule
}

// WebhookTrigger starts a run when the workflow's incoming URL is called with a valid
// signature. Secret names the hub secret that signs; "" lets the hub make one.
type WebhookTrigger struct {
	Secret string
}

// ManualTrigger lets `hubctl workflow run` start a run with typed inputs.
type ManualTrigger struct {
	Inputs []Input
}

// Input types.
const (
	InputString  = "string"
	InputChoice  = "choice"
	InputBoolean = "boolean"
)

// Input is one typed input of a manual run. Default is a string, or a bool for a
// boolean input; Options are the choices of a choice input.
type Input struct {
	Name        string
	Type        string
	Description string
	Required    bool
	Default     any
	Options     []string
	Pos         Pos
}

// WorkflowTrigger starts a run when another workflow of the namespace finishes with
// one of Results.
type WorkflowTrigger struct {
	Workflows []string
	Results   []string
	Pos       Pos
}

// Run results, as needs.<job>.result and the workflow trigger see them.
const (
	ResultSuccess   = "success"
	ResultFailure   = "failure"
	ResultCancelled = "cancelled"
	ResultSkipped   = "skipped"
)

// Concurrency puts runs (or job runs) in a group: one runs at a time; others wait in
// a queue of at most Queue (the oldest waiting is cancelled when it is full), or, with
// CancelInProgress, a new one cancels the one running. Group may hold ${{ … }}.
type Concurrency struct {
	Group            string
	CancelInProgress bool
	Queue            int
	Pos              Pos
	GroupPos         Pos
}

// DefaultQueue is a concurrency group's queue length when the file sets none.
const DefaultQueue = 1

// Permissions are what $HUBCTL_TOKEN may do beyond pulling the triggering
// repository: repository patterns as access tokens take them (a name, PREFIX/*, *).
// The token never exceeds the current rights of whoever applied the workflow.
type Permissions struct {
	Pull []string
	Push []string
	// Deploy names services of the workflow's namespace (a name, PREFIX*, *) that
	// $HUBCTL_TOKEN may deploy through the hub API (hubctl deploy), while the applier
	// has the write role on the whole namespace.
	Deploy []string
}

// Job is one job: steps run one after another in containers sharing a workspace.
type Job struct {
	Name  string
	Pos   Pos
	Needs []string
	// NeedsPos are the positions of Needs' entries.
	NeedsPos []Pos
	If       string
	IfPos    Pos
	// IfStatus is true when If calls success(), failure(), cancelled() or always():
	// otherwise the job runs only when every needed job succeeded, and If too holds.
	IfStatus    bool
	Matrix      *Matrix
	Timeout     time.Duration
	Retries     int
	Concurrency *Concurrency
	Environment *Environment
	Image       string
	ImagePos    Pos
	Resources   Resources
	Env         []EnvVar
	Services    []Service
	Steps       []Step
	Outputs     []string
	Artifacts   []Artifact
	Cache       *Cache
	// Runs are the job's runs: one per matrix combination in a deterministic order,
	// or one for a job without a matrix.
	Runs []JobRun
}

// JobRun is one run of a job: its matrix combination.
type JobRun struct {
	// Name is the job's name, and for a matrix job its combination: "test (linux, 1.22)".
	Name string
	// Key is the combination's values joined by ", " ("linux, 1.22"): the key of
	// needs.<job>.runs; "" without a matrix.
	Key    string
	Matrix map[string]string
}

// Matrix runs a job once per combination of its axes' values, less the excluded
// ones, plus the included ones. Values are strings.
type Matrix struct {
	Axes []Axis
	// Keys are the axes' names, or the include entries' keys when there are no axes.
	Keys    []string
	Include []map[string]string
	Exclude []map[string]string
	Pos     Pos
}

// Axis is one key of a matrix and its values, in file order.
type Axis struct {
	Name   string
	Values []string
}

// Environment gates a job: it waits until Required of Approvers approve (any one
// rejection fails it), or Timeout passes. Name alone names an environment whose
// rules the hub keeps.
type Environment struct {
	Name      string
	Approvers []string
	Required  int
	Timeout   time.Duration
	Pos       Pos
}

// Resources limit each container of a job; zero is the executor's default.
type Resources struct {
	MilliCPU int64
	Memory   int64 // bytes
}

// Service is a side container of a job, reachable from its steps by Name.
type Service struct {
	Name     string
	Image    string
	Env      []EnvVar
	Args     []string
	Pos      Pos
	ImagePos Pos
	ArgsPos  []Pos
}

// Step is one container run of a job: Run (a shell script, /bin/sh -e) in Image (or
// the job's image), or Image's own entrypoint with Args.
type Step struct {
	Name    string
	Pos     Pos
	Image   string
	Run     string
	Args    []string
	Env     []EnvVar
	Secrets []string
	Workdir string
	// Timeout bounds the step (0: only the job's timeout does); a step past it is
	// stopped and its job run ends timed_out.
	Timeout time.Duration
	// Positions of Image and Args' entries, for errors found later.
	ImagePos Pos
	ArgsPos  []Pos
}

// Artifact is a file or directory of the workspace a job keeps for the jobs that
// need it.
type Artifact struct {
	Name string
	Path string
	Pos  Pos
}

// Cache is a directory kept between runs of the workflow under Key (which may hold
// ${{ … }}), mounted at Path in every step of the job.
type Cache struct {
	Key    string
	Path   string
	Pos    Pos
	KeyPos Pos
}

// DefaultCachePath is where a job's cache is mounted when the file says nothing.
const DefaultCachePath = "/hubctl/cache"
