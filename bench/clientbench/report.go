package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// The operations client.sh measures, in table order, and the targets of the issue.
var operations = []struct {
	id, what string
	target   float64 // hubctl/fastest peer at most this; 0 for none given
}{
	{"copy-cold", "cold copy", 0.6},
	{"copy-warm", "warm copy", 0.3},
	{"mirror-cold", "cold mirror", 0},
	{"mirror-warm", "warm mirror", 0},
}

const rssTargetMiB = 100 // peak RSS of hubctl's cold copy of the big image

type sample struct {
	seconds float64
	rssKiB  int64
	cpu     float64 // client user+system seconds
	ok      bool
}

type cell struct {
	samples []sample
}

func (c *cell) okSamples() []sample {
	var s []sample
	for _, x := range c.samples {
		if x.ok {
			s = append(s, x)
		}
	}
	return s
}

// median of the successful rounds' seconds; NaN when none succeeded.
func (c *cell) median() float64 { return c.medianOf(func(s sample) float64 { return s.seconds }) }

func (c *cell) medianOf(f func(sample) float64) float64 {
	var v []float64
	for _, s := range c.okSamples() {
		v = append(v, f(s))
	}
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// peakMiB is the largest peak RSS of the successful rounds.
func (c *cell) peakMiB() float64 {
	var m int64
	for _, s := range c.okSamples() {
		m = max(m, s.rssKiB)
	}
	return float64(m) / 1024
}

func reportMain(args []string) (missed bool, err error) {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	copyLabel := fs.String("copy-label", "copy", "what the copy operations move")
	mirrorLabel := fs.String("mirror-label", "mirror", "what the mirror operations move")
	fs.Parse(args)
	if fs.NArg() != 1 {
		usage()
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return false, err
	}
	defer f.Close()

	cells := map[[2]string]*cell{}
	var tools []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 7 {
			return false, fmt.Errorf("%s:%d: want 7 tab-separated fields, got %d", fs.Arg(0), n, len(fields))
		}
		secs, err1 := strconv.ParseFloat(fields[3], 64)
		rss, err2 := strconv.ParseInt(fields[4], 10, 64)
		cpu, err3 := strconv.ParseFloat(fields[5], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return false, fmt.Errorf("%s:%d: bad seconds, RSS or CPU", fs.Arg(0), n)
		}
		k := [2]string{fields[0], fields[1]}
		if cells[k] == nil {
			cells[k] = &cell{}
		}
		if !slices.Contains(tools, fields[1]) {
			tools = append(tools, fields[1])
		}
		cells[k].samples = append(cells[k].samples, sample{secs, rss, cpu, fields[6] == "ok"})
	}
	if err := sc.Err(); err != nil {
		return false, err
	}

	// fastestPeer is the lowest median among the tools that are not hubctl.
	fastestPeer := func(op string) (string, float64) {
		name, best := "", math.Inf(1)
		for _, t := range tools {
			c := cells[[2]string{op, t}]
			if t == "hubctl" || c == nil {
				continue
			}
			if m := c.median(); !math.IsNaN(m) && m < best {
				name, best = t, m
			}
		}
		return name, best
	}

	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "operation\ttool\tmedian s\tpeak RSS MiB\tvs fastest peer\tclient CPU s\trounds ok\t")
	for _, op := range operations {
		label := op.what + " " + *copyLabel
		if strings.HasPrefix(op.id, "mirror") {
			label = op.what + " " + *mirrorLabel
		}
		_, best := fastestPeer(op.id)
		for _, t := range tools {
			c := cells[[2]string{op.id, t}]
			if c == nil {
				continue
			}
			ok := len(c.okSamples())
			m := c.median()
			if math.IsNaN(m) {
				fmt.Fprintf(tw, "%s\t%s\tfailed\t-\t-\t-\t0/%d\t\n", label, t, len(c.samples))
				continue
			}
			ratio := "-"
			if !math.IsInf(best, 1) {
				ratio = fmt.Sprintf("%.2f", m/best)
			}
			cpu := c.medianOf(func(s sample) float64 { return s.cpu })
			fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.1f\t%s\t%.2f\t%d/%d\t\n", label, t, m, c.peakMiB(), ratio, cpu, ok, len(c.samples))
		}
	}
	tw.Flush()

	fmt.Println()
	for _, op := range operations {
		hub := cells[[2]string{op.id, "hubctl"}]
		peer, best := fastestPeer(op.id)
		name := op.what // "cold copy", "warm mirror", …
		target := "no target given"
		if op.target > 0 {
			target = fmt.Sprintf("target ≤ %.1f", op.target)
		}
		if hub == nil || math.IsNaN(hub.median()) || peer == "" {
			fmt.Printf("%s hubctl/fastest-peer (%s): n/a (hubctl or every peer failed)\n", name, target)
			if op.target > 0 {
				missed = true
			}
			continue
		}
		r := hub.median() / best
		verdict := ""
		if op.target > 0 {
			verdict = "  met"
			if r > op.target {
				verdict, missed = "  MISSED", true
			}
		}
		fmt.Printf("%s hubctl/fastest-peer (%s): %.2f (hubctl %.3f s, %s %.3f s)%s\n", name, target, r, hub.median(), peer, best, verdict)
	}
	if hub := cells[[2]string{"copy-cold", "hubctl"}]; hub != nil && len(hub.okSamples()) > 0 {
		p := hub.peakMiB()
		verdict := "met"
		if p >= rssTargetMiB {
			verdict, missed = "MISSED", true
		}
		fmt.Printf("peak RSS of hubctl %s (target < %d MiB): %.1f MiB  %s\n", *copyLabel, rssTargetMiB, p, verdict)
	} else {
		fmt.Printf("peak RSS of hubctl %s (target < %d MiB): n/a (hubctl's copy failed)\n", *copyLabel, rssTargetMiB)
		missed = true
	}
	return missed, nil
}
