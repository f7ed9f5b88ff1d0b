package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/kvgo/kvgo/loadtest"
)

func cmdLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("loadtest", "[--url http://127.0.0.1:8080] [-c N] [--duration D] [--requests N] [--kv RECIPE] [flags]")
	base := fs.String("url", "http://127.0.0.1:8080", "server `URL` (loopback only: 127.0.0.0/8, ::1, localhost)")
	clients := fs.Int("c", 8, "concurrent streaming `clients`")
	duration := fs.Duration("duration", 30*time.Second, "stop starting requests after this long")
	requests := fs.Int("requests", 200, "stop after this many requests in all")
	promptTokens := fs.Int("prompt-tokens", 200, "approximate prompt length in tokens")
	maxTokens := fs.Int("max-tokens", 64, "tokens to generate per request (sent with ignore_eos)")
	kvFlag := fs.String("kv", "", "KV `recipe` to request (\"kv\" field; default: the server's)")
	model := fs.String("model", "", "model id (default: the first of /v1/models)")
	useChat := fs.Bool("chat", false, "use /v1/chat/completions instead of /v1/completions")
	temp := fs.Float64("temp", 0.8, "sampling temperature")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up on one request after this long")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	switch {
	case *clients < 1:
		return usagef("invalid value %d for -c: must be at least 1", *clients)
	case *requests < 1:
		return usagef("invalid value %d for --requests: must be at least 1", *requests)
	case *duration <= 0 || *duration > loadtest.MaxDuration:
		return usagef("invalid value %s for --duration: must be in (0, 1h]", *duration)
	case *maxTokens < 1 || *promptTokens < 1:
		return usagef("--max-tokens and --prompt-tokens must be at least 1")
	case *timeout <= 0:
		return usagef("invalid value %s for --timeout: must be positive", *timeout)
	}
	if _, err := loadtest.LoopbackURL(*base); err != nil {
		return usagef("--url %v", err)
	}
	rep, err := loadtest.Run(ctx, loadtest.Config{
		URL: *base, Clients: *clients, Duration: *duration, Requests: *requests,
		PromptTokens: *promptTokens, MaxTokens: *maxTokens, KV: *kvFlag, Model: *model,
		Chat: *useChat, Temperature: *temp, Timeout: *timeout,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		rep.WriteJSON(stdout)
	} else {
		rep.WriteText(stdout)
	}
	if rep.OK == 0 {
		return fmt.Errorf("no request succeeded (%d failed)", rep.Failed)
	}
	return nil
}
