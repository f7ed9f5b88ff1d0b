package units

import "testing"

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.00 KiB", 1536: "1.50 KiB", 640: "640 B",
		1<<20 - 1: "1024.00 KiB", 1 << 20: "1.00 MiB", 3 << 29: "1.50 GiB", 1 << 40: "1.00 TiB", 1 << 62: "4.00 EiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParams(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0", 999: "999", 1000: "1.0K", 260_000: "260.0K", 1_049_728: "1.05M", 494_032_768: "494.03M", 7_241_732_096: "7.24B",
	} {
		if got := Params(n); got != want {
			t.Errorf("Params(%d) = %q, want %q", n, got, want)
		}
	}
}
