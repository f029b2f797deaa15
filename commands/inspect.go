package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/hubctl/hubctl/internal/distclient"
	"github.com/hubctl/hubctl/internal/iostreams"
	"github.com/hubctl/hubctl/internal/safetext"
	"github.com/hubctl/hubctl/internal/transfer"
	"github.com/hubctl/hubctl/tui"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// RegistryOptions are the inputs of the inspection verbs (ls, tags, inspect, digest,
// tag, rm).
type RegistryOptions struct {
	IO       *iostreams.IOStreams
	Args     []string
	Output   string
	Platform string
	Raw      bool
	Insecure bool
	// Manifest makes rm delete the manifest a tag names, not only the tag.
	Manifest bool
}

func newRegistryCommand(f *Factory, use, short, long, example string, args cobra.PositionalArgs, json bool,
	run func(context.Context, *transfer.Engine, *RegistryOptions) error) *cobra.Command {
	cmd, _ := newRegistryCommandOpts(f, use, short, long, example, args, json, run)
	return cmd
}

func newRegistryCommandOpts(f *Factory, use, short, long, example string, args cobra.PositionalArgs, json bool,
	run func(context.Context, *transfer.Engine, *RegistryOptions) error) (*cobra.Command, *RegistryOptions) {
	opts := &RegistryOptions{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long, Example: example,
		Args: checkArgs(args),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Output != "" && opts.Output != "json" {
				return usageErrorf(cmd, "--output must be json, not %q", opts.Output)
			}
			opts.Args = args
			engine, err := newEngine(f, opts.Insecure, args...)
			if err != nil {
				return err
			}
			return run(cmd.Context(), engine, opts)
		},
	}
	if json {
		cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "Output format: json")
	}
	cmd.Flags().BoolVar(&opts.Insecure, "insecure", false, "Allow plain HTTP to the registry named on the command line (loopback always is)")
	return cmd, opts
}

func parseRegistryRef(s string) (distclient.Ref, error) {
	l, err := transfer.ParseLocation(s)
	if err != nil {
		return distclient.Ref{}, err
	}
	if !l.IsRegistry() {
		return distclient.Ref{}, fmt.Errorf("%s is not a registry reference", s)
	}
	return l.Ref, nil
}

// NewCmdLs returns `hubctl ls`.
func NewCmdLs(f *Factory) *cobra.Command {
	return newRegistryCommand(f, "ls HOST[/PREFIX]", "List the repositories of a registry",
		`List the repositories of a registry (its catalog), or those whose name starts with
PREFIX: "team" lists team/app and teamcity/agent, "team/" only what is under team/.
Only repositories you may pull are listed by registries that check.`,
		"  hubctl ls localhost:5000\n  hubctl ls registry.example.com/team/",
		cobra.ExactArgs(1), true, func(ctx context.Context, e *transfer.Engine, o *RegistryOptions) error {
			host, prefix, _ := strings.Cut(strings.TrimPrefix(o.Args[0], "docker://"), "/")
			repos, err := e.Client.Catalog(ctx, host)
			if err != nil {
				return err
			}
			out := filterRepos(repos, prefix)
			for i, r := range out {
				out[i] = host + "/" + r
			}
			if len(out) == 0 && prefix != "" && o.Output == "" {
				fmt.Fprintf(o.IO.ErrOut, "no repository of %s starts with %q (%d listed in all)\n", host, prefix, len(repos))
			}
			return printList(o, out)
		})
}

// filterRepos keeps the repositories whose name starts with prefix, which may end
// inside a path component.
func filterRepos(repos []string, prefix string) []string {
	var out []string
	for _, r := range repos {
		if strings.HasPrefix(r, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// NewCmdTags returns `hubctl tags`.
func NewCmdTags(f *Factory) *cobra.Command {
	return newRegistryCommand(f, "tags REPOSITORY", "List the tags of a repository", "List the tags of a repository.",
		"  hubctl tags localhost:5000/team/app",
		cobra.ExactArgs(1), true, func(ctx context.Context, e *transfer.Engine, o *RegistryOptions) error {
			repo, err := distclient.ParseRepo(o.Args[0])
			if err != nil {
				return err
			}
			tags, err := e.Client.Tags(ctx, repo)
			if err != nil {
				return err
			}
			return printList(o, tags)
		})
}

func printList(o *RegistryOptions, items []string) error {
	if o.Output == "json" {
		if items == nil {
			items = []string{}
		}
		return json.NewEncoder(o.IO.Out).Encode(items)
	}
	for _, s := range items {
		fmt.Fprintln(o.IO.Out, s)
	}
	return nil
}

// NewCmdDigest returns `hubctl digest`.
func NewCmdDigest(f *Factory) *cobra.Command {
	cmd, opts := newRegistryCommandOpts(f, "digest REF", "Print the digest of an image",
		"Print the digest of the manifest or index REF names (any location form). With\n--platform, of a multi-platform image, the digest of that platform's manifest.",
		"  hubctl digest localhost:5000/app:1\n  hubctl digest --platform linux/arm64 localhost:5000/app:1\n  hubctl digest oci:./app:1",
		cobra.ExactArgs(1), false, digestRun)
	cmd.Flags().StringVar(&opts.Platform, "platform", "", "Of a multi-platform image, the digest of this platform's manifest (`os/arch[/variant]`)")
	cmd.ValidArgsFunction = completeLocations
	return cmd
}

func digestRun(ctx context.Context, e *transfer.Engine, o *RegistryOptions) error {
	l, err := transfer.ParseLocation(o.Args[0])
	if err != nil {
		return err
	}
	var want []v1.Platform
	if o.Platform != "" {
		if want, err = transfer.ParsePlatforms(o.Platform); err != nil {
			return err
		}
	}
	if l.IsRegistry() && len(want) == 0 {
		// One HEAD is all it takes.
		desc, err := e.Client.HeadManifest(ctx, l.Ref)
		if err != nil {
			return err
		}
		fmt.Fprintln(o.IO.Out, desc.Digest)
		return nil
	}
	src, err := e.Open(ctx, l)
	if err != nil {
		return err
	}
	defer src.Close()
	desc, raw, err := src.Root(ctx)
	if err != nil {
		return err
	}
	if len(want) > 0 {
		if !isIndexType(desc.MediaType) {
			return fmt.Errorf("%s is a single image, not a multi-platform index: --platform picks nothing (its digest is %s)", l, desc.Digest)
		}
		if desc, err = transfer.SelectPlatform(raw, want); err != nil {
			return fmt.Errorf("%s: %w", l, err)
		}
	}
	fmt.Fprintln(o.IO.Out, desc.Digest)
	return nil
}

// isIndexType reports whether mediaType is a multi-platform index (OCI or Docker).
func isIndexType(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// NewCmdTag returns `hubctl tag`.
func NewCmdTag(f *Factory) *cobra.Command {
	return newRegistryCommand(f, "tag REF NEWTAG", "Give an image another tag, moving no blobs",
		"Tag the manifest REF names as NEWTAG in the same repository. Only the manifest is\nsent again; no blob moves.",
		"  hubctl tag localhost:5000/app:1.2.3 1.2\n  hubctl tag localhost:5000/app@sha256:… latest",
		cobra.ExactArgs(2), false, func(ctx context.Context, e *transfer.Engine, o *RegistryOptions) error {
			ref, err := parseRegistryRef(o.Args[0])
			if err != nil {
				return err
			}
			newTag := o.Args[1]
			if strings.ContainsAny(newTag, "/@:") {
				return fmt.Errorf("NEWTAG is a tag in the same repository, like 1.2, not %q", newTag)
			}
			desc, raw, err := e.Client.GetManifest(ctx, ref)
			if err != nil {
				return err
			}
			dst := distclient.Ref{Repo: ref.Repo, Tag: newTag}
			if _, err := e.Client.PutManifest(ctx, dst, desc.MediaType, raw); err != nil {
				return err
			}
			dst.Digest = desc.Digest.String()
			fmt.Fprintln(o.IO.Out, dst.String())
			return nil
		})
}

// NewCmdRm returns `hubctl rm`.
func NewCmdRm(f *Factory) *cobra.Command {
	cmd, opts := newRegistryCommandOpts(f, "rm REF", "Delete a tag, or with --manifest an image, from a registry",
		`Delete what REF names on a registry.

REPO:TAG deletes the tag alone: the manifest it named stays, with its other tags and
any index that holds it. Registries that cannot delete a tag alone say so, and nothing
is deleted. REPO@DIGEST, or --manifest with a tag, deletes the manifest itself and so
every tag of it, as 'crane delete' does (a tag is resolved to its digest first).
Blobs are reclaimed by the registry's garbage collection.

The digest of what REF named goes to stdout.

Changed in this release: 'hubctl rm REPO:TAG' used to delete the manifest, and with it
every tag of it (and could break an index that held it). Scripts that meant that add
--manifest.`,
		"  hubctl rm localhost:5000/app:1                 # the tag 1 only\n  hubctl rm --manifest localhost:5000/app:1      # the image tag 1 names, with all its tags\n  hubctl rm localhost:5000/app@sha256:…",
		cobra.ExactArgs(1), false, rmRun)
	cmd.Aliases = []string{"delete"}
	cmd.Flags().BoolVar(&opts.Manifest, "manifest", false, "Delete the manifest a tag names (and every tag of it), not only the tag")
	return cmd
}

func rmRun(ctx context.Context, e *transfer.Engine, o *RegistryOptions) error {
	ref, err := parseRegistryRef(o.Args[0])
	if err != nil {
		return err
	}
	if ref.Digest == "" {
		desc, err := e.Client.HeadManifest(ctx, ref)
		if err != nil {
			return err
		}
		ref.Digest = desc.Digest.String()
	}
	if ref.Tag != "" && !o.Manifest && !strings.Contains(o.Args[0], "@") {
		err := e.Client.DeleteManifest(ctx, distclient.Ref{Repo: ref.Repo, Tag: ref.Tag})
		if isUnsupported(err) {
			return fmt.Errorf("%s cannot delete the tag %s alone (it answered %v); to delete the manifest %s and every tag of it, give --manifest",
				ref.Host, ref.Tag, statusOf(err), ref.Digest)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(o.IO.ErrOut, "deleted tag %s:%s (the manifest %s stays)\n", ref.Repo, ref.Tag, ref.Digest)
		fmt.Fprintln(o.IO.Out, ref.Digest)
		return nil
	}
	if err := e.Client.DeleteManifest(ctx, distclient.Ref{Repo: ref.Repo, Digest: ref.Digest}); err != nil {
		return err
	}
	fmt.Fprintf(o.IO.ErrOut, "deleted manifest %s@%s with every tag of it\n", ref.Repo, ref.Digest)
	fmt.Fprintln(o.IO.Out, ref.Digest)
	return nil
}

// isUnsupported reports a registry's refusal to delete by tag: 405, or the
// UNSUPPORTED code, or distribution's 400 asking for a digest.
func isUnsupported(err error) bool {
	var e *distclient.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Status == http.StatusMethodNotAllowed || e.HasCode("UNSUPPORTED") ||
		(e.Status == http.StatusBadRequest && e.HasCode("DIGEST_INVALID"))
}

// statusOf is the HTTP status of a registry error, for messages.
func statusOf(err error) string {
	var e *distclient.Error
	if errors.As(err, &e) {
		s := fmt.Sprintf("%d", e.Status)
		if len(e.Codes) > 0 {
			s += " " + e.Codes[0].Code
		}
		return s
	}
	return err.Error()
}

// NewCmdInspect returns `hubctl inspect`.
func NewCmdInspect(f *Factory) *cobra.Command {
	cmd, opts := newRegistryCommandOpts(f, "inspect REF", "Show an image's manifest, config, platforms and layers",
		"Show what REF (any location form) holds: for an index, its platforms; for an image,\nits config (platform, entrypoint) and layers with their sizes. -o json prints the raw\ndocuments: the manifest (or index) and the image's config; --raw prints the manifest's\nexact bytes.",
		"  hubctl inspect localhost:5000/app:1\n  hubctl inspect --platform linux/arm64 ghcr.io/org/app:1\n  hubctl inspect -o json oci:./app:1 | jq .config",
		cobra.ExactArgs(1), true, inspectRun)
	cmd.Flags().BoolVar(&opts.Raw, "raw", false, "Print the manifest's bytes exactly as stored (their sha256 is the digest)")
	cmd.Flags().StringVar(&opts.Platform, "platform", "", "Of a multi-platform image, show this platform's image (`os/arch[/variant]`)")
	cmd.ValidArgsFunction = completeLocations
	return cmd
}

type inspectJSON struct {
	Reference string          `json:"reference"`
	Digest    string          `json:"digest"`
	MediaType string          `json:"mediaType"`
	Size      int64           `json:"size"`
	Manifest  json.RawMessage `json:"manifest"`
	Config    json.RawMessage `json:"config,omitempty"`
}

func inspectRun(ctx context.Context, e *transfer.Engine, o *RegistryOptions) error {
	l, err := transfer.ParseLocation(o.Args[0])
	if err != nil {
		return err
	}
	src, err := e.Open(ctx, l)
	if err != nil {
		return err
	}
	defer src.Close()
	desc, raw, err := src.Root(ctx)
	if err != nil {
		return err
	}
	if o.Platform != "" && (desc.MediaType == ocispec.MediaTypeImageIndex || desc.MediaType == "application/vnd.docker.distribution.manifest.list.v2+json") {
		want, err := transfer.ParsePlatforms(o.Platform)
		if err != nil {
			return err
		}
		child, err := transfer.SelectPlatform(raw, want)
		if err != nil {
			return err
		}
		desc = child
		if raw, err = src.Manifest(ctx, desc); err != nil {
			return err
		}
	}
	if o.Raw {
		_, err := o.IO.Out.Write(raw)
		return err
	}
	var config []byte
	var m ocispec.Manifest
	isImage := !(desc.MediaType == ocispec.MediaTypeImageIndex || desc.MediaType == "application/vnd.docker.distribution.manifest.list.v2+json")
	if isImage {
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("parse manifest: %w", err)
		}
		if m.Config.Size > 0 && m.Config.Size < 16<<20 {
			rc, err := src.Blob(ctx, m.Config)
			if err != nil {
				return err
			}
			config, err = io.ReadAll(io.LimitReader(rc, m.Config.Size+1))
			rc.Close()
			if err != nil {
				return err
			}
		}
	}
	if o.Output == "json" {
		out := inspectJSON{Reference: l.String(), Digest: desc.Digest.String(), MediaType: desc.MediaType, Size: desc.Size, Manifest: raw}
		if json.Valid(config) {
			out.Config = config
		}
		return json.NewEncoder(o.IO.Out).Encode(out)
	}
	// Everything below but the reference comes from the registry and the image's
	// author: escaped, so it cannot add lines or drive the terminal.
	esc := safetext.Escape
	w := tabwriter.NewWriter(o.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Reference:\t%s\n", l)
	fmt.Fprintf(w, "Digest:\t%s\n", esc(string(desc.Digest)))
	fmt.Fprintf(w, "Media type:\t%s\n", esc(desc.MediaType))
	if !isImage {
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return fmt.Errorf("parse index: %w", err)
		}
		fmt.Fprintf(w, "Manifests:\t%d\n", len(idx.Manifests))
		w.Flush()
		w = tabwriter.NewWriter(o.IO.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "\nPLATFORM\tDIGEST\tSIZE")
		for _, c := range idx.Manifests {
			p := transfer.PlatformString(c.Platform)
			if ref := c.Annotations["vnd.docker.reference.digest"]; ref != "" {
				p = "attestation of " + tui.ShortDigest(ref)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", esc(p), esc(string(c.Digest)), tui.FormatBytes(c.Size))
		}
		return w.Flush()
	}
	var cfg struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
		Created      string `json:"created"`
		Config       struct {
			Entrypoint []string `json:"Entrypoint"`
			Cmd        []string `json:"Cmd"`
			WorkingDir string   `json:"WorkingDir"`
			User       string   `json:"User"`
		} `json:"config"`
	}
	_ = json.Unmarshal(config, &cfg)
	if m.ArtifactType != "" {
		fmt.Fprintf(w, "Artifact type:\t%s\n", esc(m.ArtifactType))
	}
	if cfg.OS != "" {
		p := cfg.OS + "/" + cfg.Architecture
		if cfg.Variant != "" {
			p += "/" + cfg.Variant
		}
		fmt.Fprintf(w, "Platform:\t%s\n", esc(p))
	}
	if cfg.Created != "" {
		fmt.Fprintf(w, "Created:\t%s\n", esc(cfg.Created))
	}
	if len(cfg.Config.Entrypoint) > 0 {
		fmt.Fprintf(w, "Entrypoint:\t%s\n", esc(strings.Join(cfg.Config.Entrypoint, " ")))
	}
	if len(cfg.Config.Cmd) > 0 {
		fmt.Fprintf(w, "Cmd:\t%s\n", esc(strings.Join(cfg.Config.Cmd, " ")))
	}
	if cfg.Config.User != "" {
		fmt.Fprintf(w, "User:\t%s\n", esc(cfg.Config.User))
	}
	fmt.Fprintf(w, "Config:\t%s (%s)\n", esc(string(m.Config.Digest)), tui.FormatBytes(m.Config.Size))
	var total int64
	for _, layer := range m.Layers {
		total += layer.Size
	}
	fmt.Fprintf(w, "Layers:\t%d, %s\n", len(m.Layers), tui.FormatBytes(total))
	if m.Subject != nil {
		fmt.Fprintf(w, "Subject:\t%s\n", esc(string(m.Subject.Digest)))
	}
	w.Flush()
	w = tabwriter.NewWriter(o.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nLAYER\tSIZE\tMEDIA TYPE")
	for _, layer := range m.Layers {
		fmt.Fprintf(w, "%s\t%s\t%s\n", esc(string(layer.Digest)), tui.FormatBytes(layer.Size), esc(layer.MediaType))
	}
	return w.Flush()
}
