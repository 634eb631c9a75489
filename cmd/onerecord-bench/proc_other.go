//go:build !linux

package main

import "time"

// processCPU is not measured on this platform.
func processCPU(int) time.Duration { return 0 }

func loadAverage() string { return "unknown" }
