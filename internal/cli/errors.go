package cli

import (
	"errors"

	"github.com/onerecord/onerecord/internal/grant"
)

func asLapsed(err error, target **grant.LapsedError) bool { return errors.As(err, target) }
