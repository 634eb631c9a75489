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

func BenchmarkGenerate500k(b *testing.B) { benchmarkGenerate(b, 500_000) }

// BenchmarkSearchPage100k pages through one patient's Observations in a
// 100k-resource sandbox (the index makes a page cost the page, not the set).
func BenchmarkSearchPage100k(b *testing.B) {
	_, base := start(b, Options{AutoApprove: true, Resources: 100_000})
	tr := connect(b, base)
	url := base + "/Observation?patient=" + tr.str("patient") + "&_count=100"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if st, _, _, _ := get(b, url, tr.str("access_token")); st != 200 {
			b.Fatal(st)
		}
	}
}
