package server

import (
	"context"
	"sync"

	"github.com/hubctl/hubctl/internal/events"
	"github.com/hubctl/hubctl/internal/workflow/engine"
)

// wakeOnEvents wakes the replica's workflow engine when this replica commits an event
// a trigger may want (a manifest pushed, a tag deleted): the registry publishes on the
// in-process bus after the change and its outbox event are committed, so the
// dispatcher finds the event at once instead of at its next interval. Events of other
// replicas are found at the interval, as before.
func wakeOnEvents(ctx context.Context, wg *sync.WaitGroup, bus *events.Bus, e *engine.Engine) {
	ch, unsubscribe := bus.Subscribe(256)
	wg.Go(func() {
		defer unsubscribe()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-ch:
				if !ok {
					return
				}
				if ev.Type == events.ManifestPushed || ev.Type == events.TagDeleted {
					e.Wake()
				}
			}
		}
	})
}
