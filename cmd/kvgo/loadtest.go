package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/kvgo/kvgo/engine"
	"github.com/kvgo/kvgo/eval/ragkb"
	"github.com/kvgo/kvgo/loadtest"
)

func cmdLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("loadtest", "[--url http://127.0.0.1:8080] [-c N] [--duration D] [--requests N] [--kv RECIPE] [--rag] [flags]")
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
	useRAG := fs.Bool("rag", false, "send the RAG workload of kvgo eval rag: documents as chunks between --chunk-sep separators (start the server with the same --chunk-sep), greedy answers scored; --prompt-tokens unused, --max-tokens default 10")
	ragDocs := fs.Int("docs", 24, "RAG: documents in the knowledge base")
	ragDocTokens := fs.Int("doc-tokens", 160, "RAG: about this many tokens per document")
	ragK := fs.Int("k", 4, "RAG: documents per question")
	ragZipf := fs.Float64("zipf", 1.2, "RAG: Zipf popularity exponent (> 1)")
	ragWarm := fs.Int("warm", 80, "RAG: warm-up questions before the timed run (0: none)")
	seed := fs.Uint64("seed", 0, "RAG: seed of the knowledge base and the questions (runs with one seed ask the same questions)")
	chunkSep := fs.String("chunk-sep", " # # ", "RAG: the chunk separator the server was started with")
	salt := fs.String("cache-salt", "", "RAG: cache_salt to send (default: one per seed and recipe, so runs do not share caches)")
	tokModel := fs.String("tokenizer", "", "RAG: size documents with this GGUF's tokenizer (default: the embedded kvgo-tiny's)")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	if *useRAG && !flagSet(fs, "max-tokens") {
		*maxTokens = 10
	}
	switch {
	case *useRAG && *useChat:
		return usagef("--rag sends completions: drop --chat")
	case *useRAG && (*ragDocs < 1 || *ragDocTokens < 1 || *ragK < 1 || *ragWarm < 0 || *ragZipf <= 1):
		return usagef("--docs, --doc-tokens and --k must be at least 1, --warm at least 0, --zipf above 1")
	case *useRAG && *chunkSep == "":
		return usagef("--chunk-sep must not be empty")
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
	cfg := loadtest.Config{
		URL: *base, Clients: *clients, Duration: *duration, Requests: *requests,
		PromptTokens: *promptTokens, MaxTokens: *maxTokens, KV: *kvFlag, Model: *model,
		Chat: *useChat, Temperature: *temp, Timeout: *timeout,
	}
	if *useRAG {
		// The documents are sized in the served model's tokens, as
		// `kvgo eval rag` sizes them; only the tokenizer is used.
		e, err := engine.Load(*tokModel, 1)
		if err != nil {
			return fmt.Errorf("loading the tokenizer: %w", err)
		}
		defer e.Close()
		warm := *ragWarm
		if warm == 0 {
			warm = -1
		}
		cfg.RAG = &loadtest.RAG{Shape: ragkb.Config{Docs: *ragDocs, DocTokens: *ragDocTokens, K: *ragK, Zipf: *ragZipf},
			Seed: *seed, Warm: warm, Sep: *chunkSep, Salt: *salt,
			Count: func(s string) int { return len(e.Tok.Encode(s, false, false)) }}
	}
	rep, err := loadtest.Run(ctx, cfg)
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

// flagSet says whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
