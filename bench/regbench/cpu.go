package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat; Linux fixes it at
// 100 for user space on every architecture Go supports.
const clockTicks = 100

// procCPU returns the CPU seconds (user + system) process pid has used so far. On a
// 2-core machine the client and both servers share the cores, so wall-clock throughput
// partly measures the client; CPU per unit of work is the server's own cost.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces and parentheses: fields are counted
	// after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	// After the name: state is field 3, so utime (14) and stime (15) are f[11], f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return float64(u+st) / clockTicks, nil
}

// procTreeCPU is the CPU seconds of pid and its descendants: the live ones (found
// through /proc/PID/task/TID/children) and, through cutime and cstime, those that
// exited and were waited for. A PostgreSQL server does its work in one child per
// connection, so the postmaster's own time says nothing.
func procTreeCPU(pid int) (float64, error) {
	self, err := procCPU(pid)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) >= 15 {
		cu, err1 := strconv.ParseInt(f[13], 10, 64)
		cs, err2 := strconv.ParseInt(f[14], 10, 64)
		if err1 == nil && err2 == nil {
			self += float64(cu+cs) / clockTicks
		}
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, k := range strings.Fields(string(kids)) {
			kid, err := strconv.Atoi(k)
			if err != nil {
				continue
			}
			if c, err := procTreeCPU(kid); err == nil {
				self += c // a child that exited meanwhile is counted once it is waited for
			}
		}
	}
	return self, nil
}
