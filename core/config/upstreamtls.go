package config

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// UpstreamTLS is how the gateway speaks TLS to an upstream's https://
// targets; http:// targets of the same upstream ignore it. Every zero field
// has a safe default: the system roots verify the target's certificate
// against the target's host, TLS 1.2 at least, no client certificate.
// The files are read again on every reload: a renewed CA or client
// certificate is used from the next new connection on.
type UpstreamTLS struct {
	// CAFile is a PEM bundle of the certificate authorities that may sign
	// the targets' certificates, in place of the system roots. Default
	// "": the system roots.
	CAFile string `json:"ca_file" yaml:"ca_file"`

	// ServerName is the name sent in SNI and that the targets'
	// certificates must be valid for. Default "": each target's own host
	// (an IP target is verified against the certificate's IP SANs, and
	// sends no SNI).
	ServerName string `json:"server_name" yaml:"server_name"`

	// InsecureSkipVerify accepts any certificate the targets present:
	// the traffic is encrypted but anyone on the path can intercept it.
	// For tests only; the gateway logs a warning whenever it loads a
	// config that sets it. Default false.
	InsecureSkipVerify bool `json:"insecure_skip_verify" yaml:"insecure_skip_verify"`

	// CertFile and KeyFile are the client certificate (PEM chain, leaf
	// first) and its private key the gateway presents to targets that
	// ask for one (mutual TLS). Both or neither. Default "": none.
	CertFile string `json:"cert_file" yaml:"cert_file"`
	KeyFile  string `json:"key_file" yaml:"key_file"`

	// MinVersion is the lowest TLS version the gateway accepts: "1.2" or
	// "1.3". Default "" means "1.2".
	MinVersion string `json:"min_version" yaml:"min_version"`
}

// UpstreamTLSFiles is what the files of an UpstreamTLS hold.
type UpstreamTLSFiles struct {
	// Roots verify the targets' certificates; nil: the system roots.
	Roots *x509.CertPool
	// Cert is the client certificate; nil: none.
	Cert *tls.Certificate
	// Sum is the SHA-256 of the files' contents, to tell that a file
	// changed while its name did not.
	Sum [sha256.Size]byte
}

// Load reads t's files. A problem is a *FieldError whose Path is the
// field's name ("ca_file", "cert_file", "key_file").
func (t *UpstreamTLS) Load() (*UpstreamTLSFiles, error) {
	f := &UpstreamTLSFiles{}
	h := sha256.New()
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, &FieldError{Path: "ca_file", Msg: fileProblem(t.CAFile, err)}
		}
		f.Roots = x509.NewCertPool()
		if !f.Roots.AppendCertsFromPEM(pem) {
			return nil, &FieldError{Path: "ca_file", Msg: fmt.Sprintf(`%q holds no PEM certificate; give a file of "-----BEGIN CERTIFICATE-----" blocks`, t.CAFile)}
		}
		h.Write(pem)
	}
	if t.CertFile != "" {
		certPEM, err := os.ReadFile(t.CertFile)
		if err != nil {
			return nil, &FieldError{Path: "cert_file", Msg: fileProblem(t.CertFile, err)}
		}
		keyPEM, err := os.ReadFile(t.KeyFile)
		if err != nil {
			return nil, &FieldError{Path: "key_file", Msg: fileProblem(t.KeyFile, err)}
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, &FieldError{Path: "cert_file", Msg: fmt.Sprintf("%v (want PEM files: cert_file %q with the chain leaf first, key_file %q its private key)", err, t.CertFile, t.KeyFile)}
		}
		f.Cert = &cert
		h.Write(certPEM)
		h.Write(keyPEM)
	}
	h.Sum(f.Sum[:0])
	return f, nil
}

// fileProblem says why name could not be read.
func fileProblem(name string, err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%q does not exist; give the path of a PEM file (relative paths are from the gateway's working directory)", name)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("%q is not readable by the gateway's user; fix its permissions", name)
	}
	return fmt.Sprintf("%q cannot be read: %v", name, err)
}

// validateUpstreamTLS checks the tls block of u at path, reading its files.
func validateUpstreamTLS(errs *Errors, path string, u *Upstream) {
	t := u.TLS
	if t == nil {
		return
	}
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		errs.add(path+".min_version", fmt.Sprintf(`want "1.2" or "1.3", got %q`, t.MinVersion))
	}
	if t.InsecureSkipVerify && (t.CAFile != "" || t.ServerName != "") {
		errs.add(path+".insecure_skip_verify", "verifies nothing, so ca_file and server_name would be ignored; remove insecure_skip_verify, or them")
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		errs.add(path+".key_file", "is empty while cert_file is set; give the client certificate's PEM private key")
		return
	case t.CertFile == "" && t.KeyFile != "":
		errs.add(path+".cert_file", "is empty while key_file is set; give the client certificate's PEM file")
		return
	}
	if u.Discovery == nil && !anyTLSTarget(u.Targets) {
		errs.add(path, "applies to https:// targets only, and the upstream has none; write the targets as https://host:port, or remove tls")
		return
	}
	if _, err := t.Load(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			errs.add(pathField(path, fe.Path), fe.Msg)
		}
	}
}

func anyTLSTarget(targets []Target) bool {
	for _, t := range targets {
		if t.TLS() {
			return true
		}
	}
	return false
}
