package chartclient

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/provenance"
	"sigs.k8s.io/yaml"
)

// Provenance files are helm's: a PGP clear-signed message holding the chart's
// Chart.yaml and the sha256 of the archive (helm's pkg/provenance, so helm verify and
// helm pull --verify accept what hubctl signs, and the other way round).

// SignOptions sign a chart archive as 'helm package --sign' does.
type SignOptions struct {
	// Key names the signing key: its identity (user ID) in Keyring, or a part of it
	// that only one key's identity contains.
	Key string
	// Keyring is a keyring holding the secret key ('gpg --export-secret-keys'), in
	// binary or armored form.
	Keyring string
	// Passphrase returns the passphrase of an encrypted key, named by its identity;
	// nil refuses encrypted keys.
	Passphrase func(keyName string) ([]byte, error)
}

// ErrPassphraseNeeded is returned by Sign for an encrypted key without a Passphrase.
var ErrPassphraseNeeded = errors.New("the signing key is encrypted: give its passphrase")

// Sign writes file.prov, the provenance of the chart archive at file, and returns its
// path.
func Sign(file string, o SignOptions) (string, error) {
	if o.Key == "" {
		return "", errors.New("sign: name the signing key")
	}
	signer, err := provenance.NewFromKeyring(o.Keyring, o.Key)
	if err != nil {
		return "", fmt.Errorf("sign with keyring %s: %w", o.Keyring, err)
	}
	if signer.Entity == nil {
		return "", fmt.Errorf("sign: no key in %s has an identity containing %q", o.Keyring, o.Key)
	}
	fetch := o.Passphrase
	if fetch == nil {
		fetch = func(string) ([]byte, error) { return nil, ErrPassphraseNeeded }
	}
	if err := signer.DecryptKey(fetch); err != nil {
		return "", fmt.Errorf("sign: unlock key %q: %w", o.Key, err)
	}
	ch, err := loader.LoadFile(file)
	if err != nil {
		return "", fmt.Errorf("sign: load chart %s: %w", file, err)
	}
	meta, err := yaml.Marshal(ch.Metadata)
	if err != nil {
		return "", err
	}
	archive, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	sig, err := signer.ClearSign(archive, filepath.Base(file), meta)
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", file, err)
	}
	p := file + ".prov"
	if err := os.WriteFile(p, []byte(sig), 0o644); err != nil {
		return "", err
	}
	return p, nil
}

// Verification is who signed a chart archive, and its digest as signed.
type Verification struct {
	SignedBy string // the signing key's identities, comma-separated
	Hash     string // sha256:HEX of the archive
}

// Verify checks the provenance file prov of the chart archive file (as named in the
// provenance: its base name) against the public keys of keyring.
func Verify(file, prov, keyring string) (Verification, error) {
	sig, err := provenance.NewFromKeyring(keyring, "")
	if err != nil {
		return Verification{}, fmt.Errorf("verify with keyring %s: %w", keyring, err)
	}
	archive, err := os.ReadFile(file)
	if err != nil {
		return Verification{}, err
	}
	p, err := os.ReadFile(prov)
	if err != nil {
		return Verification{}, err
	}
	v, err := sig.Verify(archive, p, filepath.Base(file))
	if err != nil {
		return Verification{}, fmt.Errorf("verify %s: %w", filepath.Base(file), err)
	}
	out := Verification{Hash: v.FileHash}
	if v.SignedBy != nil {
		for name := range v.SignedBy.Identities {
			if out.SignedBy != "" {
				out.SignedBy += ", "
			}
			out.SignedBy += name
		}
	}
	return out, nil
}
