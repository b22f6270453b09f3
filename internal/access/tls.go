package access

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Certificate is the TLS certificate of the HTTPS listener.
type Certificate struct {
	TLS         tls.Certificate
	Fingerprint string // SHA-256 of the leaf certificate, as AA:BB:...
	Created     bool   // made by this call (self-signed), not read from a file
}

// LoadCertificate reads the certificate and key the operator gave.
func LoadCertificate(certFile, keyFile string) (Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return Certificate{}, fmt.Errorf("tls: %w", err)
	}
	return Certificate{TLS: c, Fingerprint: Fingerprint(c.Certificate[0])}, nil
}

// SelfSigned returns the self-signed certificate kept in dir (cert.pem and
// key.pem), making it the first time. hosts are names and addresses it is
// valid for besides localhost and the loopback addresses.
func SelfSigned(dir string, hosts []string, now time.Time) (Certificate, error) {
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := os.Stat(certFile); err == nil {
		return LoadCertificate(certFile, keyFile)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Certificate{}, fmt.Errorf("tls: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Certificate{}, fmt.Errorf("tls: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "tend"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !ip.IsUnspecified() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if h != "localhost" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Certificate{}, fmt.Errorf("tls: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Certificate{}, err
	}
	// The key first: a cert.pem without its key would be loaded, and fail, forever.
	if err := WritePEM(keyFile, "PRIVATE KEY", keyDER); err != nil {
		return Certificate{}, err
	}
	if err := WritePEM(certFile, "CERTIFICATE", der); err != nil {
		return Certificate{}, err
	}
	c, err := LoadCertificate(certFile, keyFile)
	c.Created = true
	return c, err
}

// WritePEM writes der as one PEM block of kind, mode 0600, by rename: a
// reader never sees half a file.
func WritePEM(path, kind string, der []byte) error {
	b := pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}

// Fingerprint is the SHA-256 fingerprint of a DER certificate, as AA:BB:...:
// what an operator compares with the one the daemon printed.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	hexed := make([]string, len(sum))
	for i, b := range sum {
		hexed[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(hexed, ":")
}
