// Command kvgo runs, serves and measures LLMs from GGUF files, with the KV
// cache as the thing it manages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
)

// command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "generate text from a prompt", cmdRun},
		{"perplexity", "measure perplexity on a text file as llama.cpp does", cmdPerplexity},
		{"bench", "measure prompt and generation speed (like llama-bench), per KV recipe", cmdBench},
		{"eval", "measure KV recipes against the full cache (kvgo eval fidelity)", cmdEval},
		{"info", "describe a GGUF model file", cmdInfo},
		{"tokenize", "print the token ids of a text", cmdTokenize},
		{"kv", "list the KV methods a recipe can name (kvgo kv list)", cmdKV},
		{"gen", "write a random-weight model of a real shape (for tests and speed work)", cmdGen},
		{"convert", "rewrite a model's attention as MLA (TransMLA), or its low-rank baseline; compare with the source", cmdConvert},
		{"serve", "serve an OpenAI-compatible API with continuous batching and KV admission", cmdServe},
		{"loadtest", "drive concurrent streaming clients against a server on loopback", cmdLoadtest},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "kvgo: an LLM inference engine built around the KV cache\n\nUsage:\n  kvgo <command> [flags] [args]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'kvgo <command> --help' for a command's flags, 'kvgo --version' for the version.\n")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(runMain(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// runMain runs the command line and returns the exit code: 0 on success,
// 1 on any error, printed on one line (never a stack trace). No command is
// an error: the usage goes to stderr.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 1
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, version())
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		default:
			fmt.Fprintf(stderr, "kvgo %s: %s\n", c.name, errLine(err))
			return 1
		}
	}
	fmt.Fprintf(stderr, "kvgo: unknown command %q\n\n", args[0])
	usage(stderr)
	return 1
}

// usageError marks errors in how a command was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// parseFlags parses flags that may come before or after positional
// arguments ("kvgo tokenize TEXT -m FILE" works too) and returns the
// positional arguments. A lone "--" ends flag parsing.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	fs.SetOutput(stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// newFlagSet makes a flag set whose --help prints a one-line synopsis first.
func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet("kvgo "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: kvgo %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// oneOf validates a flag value against a set of choices.
func oneOf(flagName, v string, choices ...string) error {
	for _, c := range choices {
		if v == c {
			return nil
		}
	}
	sort.Strings(choices)
	return usagef("invalid value %q for --%s (valid: %s)", v, flagName, strings.Join(choices, ", "))
}
