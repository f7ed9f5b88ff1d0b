// Package defaultmodel embeds kvgo-tiny.gguf, the 1M-parameter model trained
// for kvgo, so that `kvgo run`, `serve` and `eval` work with no download.
package defaultmodel

import _ "embed"

//go:embed kvgo-tiny.gguf
var data []byte

// Name is how the embedded model is shown to users.
const Name = "kvgo-tiny (embedded)"

// Bytes returns a private copy of the embedded GGUF file. The copy is
// freshly allocated and therefore aligned for in-place float32 access.
func Bytes() []byte { return append([]byte(nil), data...) }
