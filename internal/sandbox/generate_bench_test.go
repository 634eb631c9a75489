package sandbox

import "testing"

func benchmarkGenerate(b *testing.B, n int) {
	for i := 0; i < b.N; i++ {
		if _, err := New(Options{Resources: n, Patients: 10, Seed: int64(i + 1)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "resources/op")
}

func BenchmarkGenerate10k(b *testing.B)  { benchmarkGenerate(b, 10_000) }
func BenchmarkGenerate100k(b *testing.B) { benchmarkGenerate(b, 100_000) }
