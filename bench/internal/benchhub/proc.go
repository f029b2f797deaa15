package benchhub

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CPU is the CPU time (user + system) process pid has used, from /proc/PID/stat; 0
// when pid is 0 or cannot be read.
func CPU(pid int) time.Duration {
	f := statFields(pid)
	if len(f) < 13 {
		return 0
	}
	return ticks(f[11]) + ticks(f[12]) // utime, stime
}

// TreeCPU is CPU for pid, its reaped children (cutime, cstime) and its living
// descendants: a PostgreSQL server works in one child per connection.
func TreeCPU(pid int) time.Duration {
	f := statFields(pid)
	if len(f) < 15 {
		return 0
	}
	sum := ticks(f[11]) + ticks(f[12]) + ticks(f[13]) + ticks(f[14])
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		for _, k := range strings.Fields(string(kids)) {
			if kid, err := strconv.Atoi(k); err == nil {
				sum += TreeCPU(kid)
			}
		}
	}
	return sum
}

// statFields are the fields of /proc/PID/stat after the command's name.
func statFields(pid int) []string {
	if pid == 0 {
		return nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

// ticks converts clock ticks (USER_HZ, 100 on Linux) to a duration.
func ticks(s string) time.Duration {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Duration(n) * time.Second / 100
}

// RSS is pid's resident set in KiB (VmRSS), 0 when it cannot be read.
func RSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseFloat(f[0], 64)
				return n
			}
		}
	}
	return 0
}

// PidOf is the pid of a process named name (one of them), 0 when there is none.
func PidOf(name string) int {
	out, _ := exec.Command("pidof", "-s", name).Output()
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return pid
}

// Percentile is the p-th percentile (nearest rank) of ds, which it does not reorder;
// 0 for none.
func Percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(min(i, len(s))-1, 0)]
}

// BuildHubctl builds this module's hubctl, static (CGO_ENABLED=0: it also runs FROM
// scratch), into dir and answers its path. Run from the module root.
func BuildHubctl(dir string) (string, error) {
	bin := dir + "/hubctl"
	b := exec.Command("go", "build", "-o", bin, "./cmd/hubctl")
	b.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := b.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/hubctl (run from the module root, or give -hubctl): %w\n%s", err, out)
	}
	return bin, nil
}

// WorkDir makes the run's temporary directory; done removes it unless keep.
func WorkDir(name string, keep bool, logf func(string, ...any)) (dir string, done func(), err error) {
	dir, err = os.MkdirTemp("", name+"-")
	if err != nil {
		return "", nil, err
	}
	if keep {
		logf("keeping %s", dir)
		return dir, func() {}, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}
