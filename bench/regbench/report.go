package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// report is what a run prints: the table for people and the same figures as JSON.
type report struct {
	Mode     string   `json:"mode"`
	Targets  []string `json:"targets"`
	Blobs    int      `json:"blobs,omitempty"`
	Size     int64    `json:"size_bytes"`
	Chunk    int64    `json:"chunk_bytes,omitempty"`
	Requests int      `json:"requests,omitempty"`
	Workers  int      `json:"workers,omitempty"`
	Rounds   int      `json:"rounds,omitempty"`
	Seconds  float64  `json:"seconds"`

	Measurements []measurement `json:"measurements,omitempty"`
	Summary      []summaryRow  `json:"summary,omitempty"`
	RSS          *rssResult    `json:"rss,omitempty"`
	Goals        string        `json:"goals,omitempty"`
	Checks       []check       `json:"checks,omitempty"`
	Pass         bool          `json:"pass"`
}

// summaryRow is one operation: the median over rounds per target, and the ratio of the
// first target to each other one.
type summaryRow struct {
	Op     string             `json:"op"`
	Unit   string             `json:"unit"`
	Values map[string]float64 `json:"values"`
	Method map[string]string  `json:"method,omitempty"`
	Ratios map[string]float64 `json:"ratios,omitempty"`
	// Cost is the median server CPU per unit of work: ms per GiB moved, or µs per
	// request (with -pids).
	Cost     map[string]float64 `json:"server_cpu_cost,omitempty"`
	CostUnit string             `json:"server_cpu_cost_unit,omitempty"`
	// BackendCost is the median CPU of the shared processes per unit of work of each
	// target (with -backend-pids), in CostUnit.
	BackendCost map[string]float64 `json:"backend_cpu_cost,omitempty"`
	// ClientCost is regbench's own median CPU per unit of work against each target.
	ClientCost map[string]float64 `json:"client_cpu_cost,omitempty"`
}

// check is one target of issue 2 next to the figure that meets or misses it.
type check struct {
	Goal string  `json:"goal"`
	Got  float64 `json:"got"`
	Want float64 `json:"want"`
	Unit string  `json:"unit"`
	OK   bool    `json:"ok"`
}

func (r *report) finish(o *options, start time.Time) {
	r.Seconds = time.Since(start).Seconds()
	var order []string
	byOp := map[string][]measurement{}
	for _, m := range r.Measurements {
		if _, seen := byOp[m.Op]; !seen {
			order = append(order, m.Op)
		}
		byOp[m.Op] = append(byOp[m.Op], m)
	}
	for _, op := range order {
		row := summaryRow{Op: op, Values: map[string]float64{}, Method: map[string]string{}, Ratios: map[string]float64{}}
		per, cost, backend, client := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
		for _, m := range byOp[op] {
			row.Unit = m.Unit
			per[m.Target] = append(per[m.Target], m.Value)
			// addCost records cpu seconds per unit of work in into, when there was work.
			addCost := func(into map[string][]float64, cpu float64) {
				switch {
				case cpu <= 0:
				case m.Bytes > 0:
					row.CostUnit = "ms/GiB"
					into[m.Target] = append(into[m.Target], cpu*1000/(float64(m.Bytes)/(1<<30)))
				case m.Count > 0:
					row.CostUnit = "µs/req"
					into[m.Target] = append(into[m.Target], cpu*1e6/float64(m.Count))
				}
			}
			addCost(cost, m.ServerCPU)
			addCost(backend, m.BackendCPU)
			addCost(client, m.ClientCPU)
			if m.Method != "" {
				row.Method[m.Target] = m.Method
			}
		}
		row.Values = medians(per)
		row.Cost, row.BackendCost, row.ClientCost = medians(cost), medians(backend), medians(client)
		if len(r.Targets) > 1 {
			cand, ok := row.Values[r.Targets[0]]
			for _, other := range r.Targets[1:] {
				if v, has := row.Values[other]; ok && has && v > 0 {
					row.Ratios[other] = cand / v
				}
			}
		}
		r.Summary = append(r.Summary, row)
	}
	if o.check {
		r.evaluate(o.goals)
	}
}

// goals are the benchmark targets of one issue: the candidate's least ratio to the peer
// per kind of operation (0: none), and the least single-stream push throughput.
type goals struct {
	push, pull, manifest float64
	pushMiBs             float64
}

// goalSets: issue 2 on the filesystem; issue 4 on S3 + PostgreSQL, where pulls are
// redirects to the same S3 server for both registries and no request rate is asked.
var goalSets = map[string]goals{
	"issue2": {push: 2.5, pull: 1.8, manifest: 3, pushMiBs: 900},
	"issue4": {push: 2, pull: 1},
}

// evaluate compares the first target (hubctl) with the second (distribution) against
// the benchmark targets named by set (see goalSets).
func (r *report) evaluate(set string) {
	g := goalSets[set]
	r.Goals = set
	r.Pass = true
	add := func(goal string, got, want float64, unit string) {
		c := check{Goal: goal, Got: got, Want: want, Unit: unit, OK: got >= want}
		r.Checks = append(r.Checks, c)
		r.Pass = r.Pass && c.OK
	}
	if r.RSS != nil {
		c := check{Goal: fmt.Sprintf("RSS while streaming %s in and out", formatSize(r.Size)), Got: r.RSS.PeakMiB, Want: 64, Unit: "MiB (max)", OK: r.RSS.PeakMiB < 64}
		r.Checks = append(r.Checks, c)
		r.Pass = c.OK
		return
	}
	if len(r.Targets) < 2 {
		return
	}
	cand, peer := r.Targets[0], r.Targets[1]
	for _, row := range r.Summary {
		ratio, ok := row.Ratios[peer]
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(row.Op, "push "):
			add(row.Op+" vs "+peer, ratio, g.push, "×")
			if g.pushMiBs > 0 && strings.HasSuffix(row.Op, " ×1") {
				add(row.Op+" "+cand, row.Values[cand], g.pushMiBs, "MiB/s")
			}
		case strings.HasPrefix(row.Op, "pull "):
			add(row.Op+" vs "+peer, ratio, g.pull, "×")
		case strings.HasPrefix(row.Op, "manifest ") && g.manifest > 0:
			add(row.Op+" vs "+peer, ratio, g.manifest, "×")
		}
	}
}

// medians maps each target to the median of its values; nil when there are none.
func medians(by map[string][]float64) map[string]float64 {
	if len(by) == 0 {
		return nil
	}
	out := map[string]float64{}
	for t, vs := range by {
		out[t] = median(vs)
	}
	return out
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// write prints the table (unless JSON goes to stdout) and the JSON file if asked.
func (r *report) write(stdout io.Writer, o *options) error {
	if o.jsonPath != "-" {
		if r.RSS != nil {
			r.RSS.writeTable(stdout, r)
		} else {
			r.writeTable(stdout)
		}
		r.writeChecks(stdout)
	}
	if o.jsonPath != "" {
		return writeJSON(stdout, o.jsonPath, r)
	}
	return nil
}

func (r *report) writeTable(w io.Writer) {
	fmt.Fprintf(w, "\n%d blobs × %s, chunks of %s, %d small requests on %d workers, %d round(s), median; ratio = %s / other\n\n",
		r.Blobs, formatSize(r.Size), formatSize(r.Chunk), r.Requests, r.Workers, r.Rounds, r.Targets[0])
	tw := newTable(w)
	head := []string{"operation"}
	for _, t := range r.Targets {
		head = append(head, t)
	}
	for _, t := range r.Targets[1:] {
		if len(r.Targets) == 2 {
			head = append(head, "ratio")
		} else {
			head = append(head, r.Targets[0]+"/"+t)
		}
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	var notes []string
	for _, row := range r.Summary {
		cells := []string{row.Op}
		for _, t := range r.Targets {
			if v, ok := row.Values[t]; ok {
				cells = append(cells, fmt.Sprintf("%9.1f %s", v, row.Unit))
			} else {
				cells = append(cells, "—")
			}
		}
		for _, t := range r.Targets[1:] {
			if v, ok := row.Ratios[t]; ok {
				cells = append(cells, fmt.Sprintf("%6.2f×", v))
			} else {
				cells = append(cells, "—")
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
		if strings.HasPrefix(row.Op, "push monolithic") {
			for _, t := range r.Targets {
				note := fmt.Sprintf("monolithic on %s: %s", t, row.Method[t])
				if row.Method[t] != "" && !slices.Contains(notes, note) {
					notes = append(notes, note)
				}
			}
		}
	}
	_ = tw.Flush()
	for _, n := range notes {
		fmt.Fprintln(w, "  "+n)
	}
	r.writeCostTable(w, "server CPU", func(row summaryRow) map[string]float64 { return row.Cost })
	r.writeCostTable(w, "shared S3 server and database CPU", func(row summaryRow) map[string]float64 { return row.BackendCost })
	r.writeCostTable(w, "client (regbench) CPU", func(row summaryRow) map[string]float64 { return row.ClientCost })
}

// writeCostTable prints a CPU cost per unit of work (what of a row) for each target;
// the ratio is other / first, so above 1 means the first target's work cost less CPU.
func (r *report) writeCostTable(w io.Writer, title string, what func(summaryRow) map[string]float64) {
	if !slices.ContainsFunc(r.Summary, func(row summaryRow) bool { return len(what(row)) > 0 }) {
		return
	}
	fmt.Fprintf(w, "\n%s per unit of work (lower is better); ratio = other / %s\n\n", title, r.Targets[0])
	tw := newTable(w)
	head := append([]string{"operation"}, r.Targets...)
	if len(r.Targets) == 2 {
		head = append(head, "ratio")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, row := range r.Summary {
		if len(what(row)) == 0 {
			continue
		}
		cells := []string{row.Op}
		for _, t := range r.Targets {
			if v, ok := what(row)[t]; ok {
				cells = append(cells, fmt.Sprintf("%9.1f %s", v, row.CostUnit))
			} else {
				cells = append(cells, "—")
			}
		}
		if len(r.Targets) == 2 {
			a, okA := what(row)[r.Targets[0]]
			b, okB := what(row)[r.Targets[1]]
			if okA && okB && a > 0 {
				cells = append(cells, fmt.Sprintf("%6.2f×", b/a))
			} else {
				cells = append(cells, "—")
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	_ = tw.Flush()
}

func (r *report) writeChecks(w io.Writer) {
	if len(r.Checks) == 0 {
		return
	}
	name := "issue 2"
	if r.Goals == "issue4" {
		name = "issue 4"
	}
	fmt.Fprintf(w, "\n%s targets:\n", name)
	tw := newTable(w)
	for _, c := range r.Checks {
		verdict := "ok"
		if !c.OK {
			verdict = "MISSED"
		}
		cmp := "≥"
		if c.Unit == "MiB (max)" {
			cmp = "<"
		}
		fmt.Fprintf(tw, "  %s\t%8.2f\t%s %g %s\t%s\t\n", c.Goal, c.Got, cmp, c.Want, c.Unit, verdict)
	}
	_ = tw.Flush()
}
