// Package units formats the byte counts and parameter counts kvgo's
// commands and reports print, so that every table spells them alike.
package units

import "fmt"

// Bytes formats a byte count in binary units: "512 B", "1.50 KiB",
// "2.00 GiB" (two decimals from KiB up).
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Params formats a count of weights with a decimal suffix: "260", "1.5K",
// "1.05M", "7.24B".
func Params(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
