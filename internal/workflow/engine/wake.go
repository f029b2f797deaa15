package engine

// Wake makes Run start its next round now rather than at the next Interval: the hub
// calls it when this replica commits an event (a push), so a run starts without
// waiting out the interval, and the engine itself calls it when a job run ends (its
// slot is free and the jobs that need it may be queued). Wakes that come while a round
// runs fold into one more round. Other replicas still find the work at their interval.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}
