package hint

import (
	"errors"
	"fmt"
	"testing"
)

func TestOf(t *testing.T) {
	base := errors.New("boom")
	if Of(base) != "" {
		t.Fatal("plain error has a hint")
	}
	err := fmt.Errorf("context: %w", With(base, "do this"))
	if Of(err) != "do this" || !errors.Is(err, base) || err.Error() != "context: boom" {
		t.Fatalf("Of = %q, Error = %q", Of(err), err.Error())
	}
	if With(nil, "x") != nil {
		t.Fatal("With(nil) != nil")
	}
}
