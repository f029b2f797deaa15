package engine

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// SecretTable is the table of workflow secrets; its value column is sealed with
// secrets.RowAD(SecretTable, id, "value").
const SecretTable = "workflow_secrets"

// MaxSecretValue bounds a secret's value.
const MaxSecretValue = 48 << 10

// secretNameRe is the rule of a secret's name, as the YAML's `secrets:` takes it.
var secretNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// SecretInfo is what a listing says of a workflow secret: never its value.
type SecretInfo struct {
	Namespace string
	Name      string
	CreatedBy int64
	CreatedAt time.Time
	UpdatedBy int64
	UpdatedAt time.Time
}

// CheckSecret says what is wrong with a secret to store: its name (letters, digits
// and _, not starting with a digit, at most 128) and its value (1 byte to 48 KiB, no
// NUL: it becomes an environment variable). The error never quotes the value.
func CheckSecret(name, value string) error {
	switch {
	case !secretNameRe.MatchString(name):
		return fmt.Errorf("%w: secret name %q: letters, digits and _, not starting with a digit, at most 128", ErrInvalid, name)
	case strings.HasPrefix(strings.ToUpper(name), "HUBCTL_"):
		return fmt.Errorf("%w: secret name %q: HUBCTL_ names are the hub's", ErrInvalid, name)
	case value == "":
		return fmt.Errorf("%w: secret %s: the value is empty", ErrInvalid, name)
	case len(value) > MaxSecretValue:
		return fmt.Errorf("%w: secret %s: the value is %d bytes, more than %d", ErrInvalid, name, len(value), MaxSecretValue)
	case strings.IndexByte(value, 0) >= 0:
		return fmt.Errorf("%w: secret %s: the value holds a NUL byte, which no environment variable can", ErrInvalid, name)
	}
	return nil
}
