// Package retrieve holds the KV methods that keep every token and choose,
// at each decode step, which pages attention reads (kv.Selector): nothing
// is lost for good, and a step reads a fraction of a long cache.
package retrieve

import "github.com/kvgo/kvgo/kv"

// Methods are the selectors of this package as recipe entries.
var Methods = []kv.Method{windowMethod}
