package tasks

import "strings"

// Prose is the haystack sentences of the built-in suite, one per entry,
// for other workloads (eval's RAG knowledge base).
func Prose() []string { return strings.Split(strings.TrimSpace(proseText), "\n") }

// Words is the suite's key words.
func Words() []string { return strings.Fields(wordsText) }
