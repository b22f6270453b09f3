package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/tend-sh/tend/internal/access"
)

// The files of a node's cluster identity, under <data>/cluster. Every node
// has the CA's certificate, its own key and its certificate; managers also
// keep the CA's key, to sign the certificates of hosts that join.
const (
	caFile      = "ca.pem"
	caKeyFile   = "ca-key.pem"
	certFile    = "node.pem"
	keyFile     = "node-key.pem"
	stateFile   = "cluster.json"
	certLife    = 10 * 365 * 24 * time.Hour
	clockSkew   = time.Hour // certificates start this much in the past: another host's clock may be behind
	caName      = "tend cluster CA"
	keyPEMType  = "PRIVATE KEY"
	certPEMType = "CERTIFICATE"
)

// authority is the cluster's certificate authority.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey // nil on a worker
}

// newAuthority makes the CA of a new cluster.
func newAuthority(now time.Time) (authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return authority{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: caName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(certLife),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return authority{}, err
	}
	cert, err := x509.ParseCertificate(der)
	return authority{cert: cert, key: key}, err
}

// hash is the SHA-256 of the CA certificate in hex: the part of a join token
// that lets a joining host know it talks to this cluster, before it trusts it.
func (a authority) hash() string { return caHash(a.cert.Raw) }

func caHash(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

func (a authority) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.cert)
	return p
}

// sign issues the certificate of node name at address, good as a TLS server
// (etcd, the join endpoint) and as a client (etcd, the other nodes).
func (a authority) sign(pub *ecdsa.PublicKey, name string, address net.IP, now time.Time) ([]byte, error) {
	if a.key == nil {
		return nil, errors.New("only a manager signs certificates")
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"tend"}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(certLife),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{name, "localhost"},
		IPAddresses:  []net.IP{address, net.IPv4(127, 0, 0, 1)},
	}
	return x509.CreateCertificate(rand.Reader, tmpl, a.cert, pub, a.key)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// identity is this node's key and certificate files under dir.
type identity struct{ dir string }

func (id identity) path(f string) string { return filepath.Join(id.dir, f) }

// exists tells a node that has joined (or made) a cluster before.
func (id identity) exists() bool {
	_, err := os.Stat(id.path(certFile))
	return err == nil
}

func (id identity) writeCA(a authority) error {
	if err := os.MkdirAll(id.dir, 0o700); err != nil {
		return err
	}
	if a.key != nil {
		der, err := x509.MarshalPKCS8PrivateKey(a.key)
		if err != nil {
			return err
		}
		if err := access.WritePEM(id.path(caKeyFile), keyPEMType, der); err != nil {
			return err
		}
	}
	return access.WritePEM(id.path(caFile), certPEMType, a.cert.Raw)
}

// readCA reads the CA, with its key where this node keeps it.
func (id identity) readCA() (authority, error) {
	der, err := readPEM(id.path(caFile), certPEMType)
	if err != nil {
		return authority{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return authority{}, fmt.Errorf("%s: %w", id.path(caFile), err)
	}
	a := authority{cert: cert}
	if kder, err := readPEM(id.path(caKeyFile), keyPEMType); err == nil {
		k, err := x509.ParsePKCS8PrivateKey(kder)
		if err != nil {
			return authority{}, fmt.Errorf("%s: %w", id.path(caKeyFile), err)
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return authority{}, fmt.Errorf("%s: not an ECDSA key", id.path(caKeyFile))
		}
		a.key = ek
	} else if !errors.Is(err, os.ErrNotExist) {
		return authority{}, err
	}
	return a, nil
}

// newKey makes this node's key and writes it; the certificate comes later, from a manager.
func (id identity) newKey() (*ecdsa.PrivateKey, error) {
	if err := os.MkdirAll(id.dir, 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return key, access.WritePEM(id.path(keyFile), keyPEMType, der)
}

func (id identity) writeCert(der []byte) error {
	return access.WritePEM(id.path(certFile), certPEMType, der)
}

func readPEM(path, kind string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != kind {
		return nil, fmt.Errorf("%s: no %s in it", path, kind)
	}
	return blk.Bytes, nil
}
