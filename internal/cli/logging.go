package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
)

// newLogger makes the logger of a command: console lines on a terminal,
// JSON otherwise (or as --log-format says), -v per more detailed level.
// A quiet logger keeps warnings and errors only, and on a terminal turns
// the changes applied into one progress line instead of a line each.
func newLogger(format string, verbose int, quiet bool, w io.Writer) (logr.Logger, *progress, error) {
	tty := isTerminal(w)
	if format == "" {
		format = "json"
		if tty {
			format = "console"
		}
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return logr.Discard(), nil, fmt.Errorf("--log-format %q: want console or json", format)
	}
	var core zapcore.Core = zapcore.NewCore(enc, zapcore.AddSync(w), zapcore.Level(-verbose))
	var p *progress
	if quiet {
		if tty {
			p = &progress{w: w}
		}
		core = quietCore{Core: core, progress: p}
	}
	return zapr.NewLogger(zap.New(core)), p, nil
}

// clearing is standard output when a progress line may be on the
// terminal: it erases the line before the output goes on.
type clearing struct {
	w io.Writer
	p *progress
}

func (c clearing) Write(b []byte) (int, error) {
	c.p.clear()
	return c.w.Write(b)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// quietCore passes warnings and errors (and the engine's "warning: ..."
// lines and the datapath's notes, such as maps replaced, which logr can
// only write at info level) and drops the rest, counting the changes
// applied for the progress line.
type quietCore struct {
	zapcore.Core
	progress *progress
}

func (c quietCore) With(fields []zapcore.Field) zapcore.Core {
	return quietCore{Core: c.Core.With(fields), progress: c.progress}
}

func (c quietCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Level >= zapcore.WarnLevel || strings.HasPrefix(e.Message, "warning:") || e.Message == "datapath" {
		c.progress.clear()
		return c.Core.Check(e, ce)
	}
	if e.Message == "applied" {
		c.progress.step()
	}
	return ce
}

// progress is one line on a terminal, rewritten at most ten times a
// second: how many changes have been applied so far. The command's
// summary replaces it.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	n     int
	last  time.Time
	shown bool
}

func (p *progress) step() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	spin := `|/-\`[p.n%4]
	fmt.Fprintf(p.w, "\r\033[K%c applying: %d changes", spin, p.n)
	p.shown = true
}

// clear erases the line, before a log line or the summary.
func (p *progress) clear() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}
