package main
import (
 _ "github.com/spf13/cobra"
 _ "github.com/spf13/cobra/doc"
 _ "modernc.org/sqlite"
 _ "github.com/opencontainers/go-digest"
 _ "github.com/opencontainers/image-spec/specs-go/v1"
 _ "gopkg.in/yaml.v3"
 _ "github.com/google/uuid"
)
func main(){}
