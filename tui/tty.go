package tui

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/hubctl/hubctl/internal/progress"
)

// fps caps redraws: bars need no more, and the transfer shares slow CPUs with us.
const fps = 20

// renderTTY runs the bubbletea view until the channel closes. A goroutine feeds the
// program so that the channel is drained at the producer's pace whatever the view
// does; once the program has ended, Send returns at once and draining goes on.
func renderTTY(ctx context.Context, opts Options, events <-chan progress.Event, tally *progress.Tally, cancel context.CancelFunc) {
	m := newModel(opts.width(), newStyles(opts.Err, opts.NoColor), cancel)
	p := tea.NewProgram(m,
		tea.WithInput(opts.input()),
		tea.WithOutput(opts.Err),
		tea.WithoutBracketedPaste(),
		tea.WithFPS(fps),
		// bubbletea's handler would quit the view on the first SIGINT or SIGTERM and
		// then stop listening; ours below cancels instead, on every signal.
		tea.WithoutSignalHandler(),
	)

	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for e := range events {
			tally.Add(e)
			p.Send(eventMsg{e})
		}
		p.Send(closedMsg{})
	}()
	// Keys reach the view as keys while the terminal is in raw mode; signals come
	// when stdin is not a terminal, or from kill. Both act like Ctrl-C.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	stop := make(chan struct{})
	go func() {
		ctxDone := ctx.Done()
		for {
			select {
			case <-ctxDone:
				ctxDone = nil
				p.Send(ctxDoneMsg{})
			case <-sigs:
				p.Send(interruptMsg{})
			case <-stop:
				return
			}
		}
	}()

	// Run restores the terminal before it returns, whether the view ended normally,
	// was abandoned or panicked.
	final, err := p.Run()
	// Signals go back to their default before the draining below, which may last if
	// the producer ignores cancel: then a further Ctrl-C must still end the process.
	signal.Stop(sigs)
	close(stop)
	if err != nil {
		// bubbletea restores the terminal only once its event loop ran; an error
		// before that (the input or output could not be set up) leaves the cursor
		// hidden, so show it whatever happened.
		fmt.Fprint(opts.Err, ansi.ShowCursor)
		fmt.Fprintf(opts.Err, "progress view stopped: %v\n", err)
	} else if fm, ok := final.(*model); ok && fm.abandoned && !fm.closed {
		fmt.Fprintln(opts.Err, "stopped showing progress; waiting for transfers to stop…")
	}
	<-fed
}
