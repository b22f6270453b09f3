package cluster

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/nodes"
)

// The join endpoint: a host that holds a token asks a manager for its
// certificate. It is HTTPS with the manager's certificate; the host has no
// certificate yet, so the token is what admits it.

type joinRequest struct {
	Secret    string     `json:"secret"`
	Name      string     `json:"name"`
	Address   string     `json:"address"`
	Role      nodes.Role `json:"role"`
	PublicKey []byte     `json:"public_key"` // PKIX DER
}

type joinAnswer struct {
	CACert    []byte   `json:"ca_cert"`
	CAKey     []byte   `json:"ca_key,omitempty"` // managers sign the next joins
	Cert      []byte   `json:"cert"`
	Endpoints []string `json:"endpoints"`                 // etcd's client URLs
	Initial   string   `json:"initial_cluster,omitempty"` // managers: etcd's members, this one included
}

func (m *Member) listenJoin() error {
	l, err := net.Listen("tcp", net.JoinHostPort(m.cfg.Advertise, strconv.Itoa(m.cfg.Ports.Join)))
	if err != nil {
		return errs.Wrap(errs.Unavailable, fmt.Errorf("join endpoint: %w", err))
	}
	m.joinLn = l
	return nil
}

func (m *Member) serveJoin(ctx context.Context) {
	cert, err := tls.LoadX509KeyPair(m.id.path(certFile), m.id.path(keyFile))
	if err != nil {
		m.cfg.Log.Error("join endpoint", "err", err)
		return
	}
	ca, err := m.id.readCA()
	if err != nil {
		m.cfg.Log.Error("join endpoint", "err", err)
		return
	}
	cert.Certificate = append(cert.Certificate, ca.cert.Raw) // the joiner checks the CA against its token
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/join", func(w http.ResponseWriter, r *http.Request) {
		var req joinRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			joinFail(w, errs.E(errs.Invalid, "join request: %v", err))
			return
		}
		ans, err := m.admit(r.Context(), req)
		if err != nil {
			m.cfg.Log.Warn("join refused", "node", req.Name, "address", req.Address, "from", r.RemoteAddr, "err", err)
			joinFail(w, err)
			return
		}
		m.cfg.Log.Info("node joined", "node", req.Name, "address", req.Address, "role", req.Role)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ans)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ServeTLS(m.joinLn, "", ""); !errors.Is(err, http.ErrServerClosed) {
		m.cfg.Log.Error("join endpoint", "err", err)
	}
}

// joinStatus is the status a refused join answers with, by kind; the joiner
// reads the kind back from it.
var joinStatus = map[errs.Kind]int{errs.Invalid: http.StatusBadRequest, errs.Unauthenticated: http.StatusUnauthorized,
	errs.Forbidden: http.StatusForbidden, errs.Conflict: http.StatusConflict}

func joinFail(w http.ResponseWriter, err error) {
	code, ok := joinStatus[errs.KindOf(err)]
	if !ok {
		code = http.StatusInternalServerError
	}
	http.Error(w, err.Error(), code)
}

// admit checks a join request against the secrets and signs the host's certificate.
func (m *Member) admit(ctx context.Context, req joinRequest) (joinAnswer, error) {
	s, err := m.secrets(ctx)
	if err != nil {
		return joinAnswer{}, err
	}
	role, err := s.role(req.Secret)
	if err != nil {
		return joinAnswer{}, err
	}
	if req.Role == nodes.Manager && role != nodes.Manager {
		return joinAnswer{}, errs.E(errs.Forbidden, "joining as a manager needs the manager token (`tend cluster join-token --manager`)")
	}
	if req.Role != nodes.Manager && req.Role != nodes.Worker {
		return joinAnswer{}, errs.E(errs.Invalid, "role %q: manager or worker", req.Role)
	}
	ip := net.ParseIP(req.Address)
	if ip == nil || strings.ContainsAny(req.Name, "/ ") || req.Name == "" {
		return joinAnswer{}, errs.E(errs.Invalid, "node %q at %q: a name without spaces or slashes, and an IP address", req.Name, req.Address)
	}
	all, err := m.nodeRecords(ctx)
	if err != nil {
		return joinAnswer{}, err
	}
	for _, n := range all {
		if n.Name == req.Name && n.Address != req.Address {
			return joinAnswer{}, errs.E(errs.Conflict, "a node named %s is in the cluster already, at %s", n.Name, n.Address)
		}
	}
	pub, err := x509.ParsePKIXPublicKey(req.PublicKey)
	if err != nil {
		return joinAnswer{}, errs.E(errs.Invalid, "public key: %v", err)
	}
	ek, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return joinAnswer{}, errs.E(errs.Invalid, "public key: not ECDSA")
	}
	ca, err := m.id.readCA()
	if err != nil {
		return joinAnswer{}, err
	}
	cert, err := ca.sign(ek, req.Name, ip, m.cfg.Clock.Now())
	if err != nil {
		return joinAnswer{}, err
	}
	ans := joinAnswer{CACert: ca.cert.Raw, Cert: cert}
	if role == nodes.Manager && req.Role == nodes.Manager {
		if ans.CAKey, err = x509.MarshalPKCS8PrivateKey(ca.key); err != nil {
			return joinAnswer{}, err
		}
		peer := "https://" + net.JoinHostPort(req.Address, strconv.Itoa(m.cfg.Ports.Peer))
		if ans.Initial, err = m.addMember(ctx, req.Name, peer); err != nil {
			return joinAnswer{}, err
		}
	}
	if ans.Endpoints, err = m.endpoints(ctx); err != nil {
		return joinAnswer{}, err
	}
	return ans, nil
}

// addMember adds a manager's etcd member and returns the initial cluster it starts with.
func (m *Member) addMember(ctx context.Context, name, peer string) (string, error) {
	list, err := m.cli.MemberList(ctx)
	if err != nil {
		return "", err
	}
	var initial []string
	added := false
	for _, mem := range list.Members {
		for _, u := range mem.PeerURLs {
			if u == peer {
				added = true // a join that failed after its member was added, tried again
			}
		}
		n := mem.Name
		if n == "" {
			continue // added, never started
		}
		for _, u := range mem.PeerURLs {
			initial = append(initial, n+"="+u)
		}
	}
	if !added {
		// As a learner: it does not count for the quorum until it has caught
		// up and promoted itself, so adding it never stops the cluster.
		if err := m.addLearner(ctx, peer); err != nil {
			return "", fmt.Errorf("etcd: add member: %w", err)
		}
	}
	return strings.Join(append(initial, name+"="+peer), ","), nil
}

// addLearner adds the member, waiting while etcd calls the cluster unhealthy:
// it does so for a few seconds after a member was added or restarted.
func (m *Member) addLearner(ctx context.Context, peer string) error {
	deadline := m.cfg.Clock.Now().Add(joinPatience)
	for {
		_, err := m.cli.MemberAddAsLearner(ctx, []string{peer})
		if !errors.Is(err, rpctypes.ErrUnhealthy) || m.cfg.Clock.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.cfg.Clock.After(250 * time.Millisecond):
		}
	}
}

// joinPatience is how long a manager tries to add a joining manager; the
// joiner's request waits a little longer.
const joinPatience = 20 * time.Second

func (m *Member) endpoints(ctx context.Context) ([]string, error) {
	list, err := m.cli.MemberList(ctx, clientv3.WithSerializable())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, mem := range list.Members {
		out = append(out, mem.ClientURLs...)
	}
	return out, nil
}

// join asks the manager at cfg.Join for this host's certificate, and as a
// manager starts its etcd member.
func (m *Member) join(ctx context.Context) error {
	if err := m.check(); err != nil {
		return err
	}
	tok, err := parseToken(m.cfg.Token)
	if err != nil {
		return err
	}
	addr := m.cfg.Join
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, strconv.Itoa(m.cfg.Ports.Join))
	}
	key, err := m.id.newKey()
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	role := nodes.Worker
	if m.cfg.Manager {
		role = nodes.Manager
	}
	body, _ := json.Marshal(joinRequest{Secret: tok.secret, Name: m.cfg.Name, Address: m.cfg.Advertise, Role: role, PublicKey: pub})
	c := &http.Client{Timeout: joinPatience + 10*time.Second, Transport: &http.Transport{TLSClientConfig: pinnedTLS(tok.caHash)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+"/v1/join", bytes.NewReader(body))
	if err != nil {
		return errs.E(errs.Invalid, "--join %q: %v", m.cfg.Join, err)
	}
	resp, err := c.Do(req)
	if errors.Is(err, errOtherCluster) {
		return errs.Wrap(errs.Unauthenticated, fmt.Errorf("join %s: %w", addr, errOtherCluster))
	}
	if err != nil {
		return errs.Wrap(errs.Unavailable, fmt.Errorf("join %s: %w", addr, err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		kind := errs.Unavailable
		for k, code := range joinStatus {
			if code == resp.StatusCode {
				kind = k
			}
		}
		return errs.E(kind, "join %s refused: %s", addr, strings.TrimSpace(string(b)))
	}
	var ans joinAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		return fmt.Errorf("join %s: %w", addr, err)
	}
	caCert, err := x509.ParseCertificate(ans.CACert)
	if err != nil || caHash(caCert.Raw) != tok.caHash {
		return errs.E(errs.Unauthenticated, "join %s: the manager sent a CA that is not the token's", addr)
	}
	ca := authority{cert: caCert}
	if len(ans.CAKey) > 0 {
		k, err := x509.ParsePKCS8PrivateKey(ans.CAKey)
		if err != nil {
			return fmt.Errorf("join: CA key: %w", err)
		}
		ca.key, _ = k.(*ecdsa.PrivateKey)
	}
	if err := m.id.writeCA(ca); err != nil {
		return err
	}
	if err := m.id.writeCert(ans.Cert); err != nil {
		return err
	}
	m.self = nodes.Node{Name: m.cfg.Name, Address: m.cfg.Advertise, Role: role}
	endpoints := ans.Endpoints
	if role == nodes.Manager {
		if m.etcd, err = startEtcd(m.etcdDir(), m.id, m.cfg.Name, m.cfg.Advertise, m.cfg.Ports, ans.Initial, true); err != nil {
			return err
		}
		if err := m.promote(ctx, endpoints); err != nil {
			return err
		}
		endpoints = append([]string{m.clientURL()}, endpoints...)
	}
	if m.cli, err = newClient(m.id, endpoints); err != nil {
		return err
	}
	if err := m.save(endpoints); err != nil {
		return err
	}
	if role == nodes.Manager {
		return m.listenJoin()
	}
	return nil
}

var errOtherCluster = errors.New("the manager's certificate is not of the token's cluster (wrong token, or not a manager of it)")

// promote makes this manager's etcd member, a learner, a voting member once
// it has caught up with the leader (etcd refuses until then).
func (m *Member) promote(ctx context.Context, endpoints []string) error {
	cli, err := newClient(m.id, endpoints)
	if err != nil {
		return err
	}
	defer cli.Close()
	id := uint64(m.etcd.Server.MemberID())
	deadline := m.cfg.Clock.Now().Add(etcdReadyWait)
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := cli.MemberPromote(pctx, id)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || m.cfg.Clock.Now().After(deadline) {
			return fmt.Errorf("etcd: promote this member: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-m.cfg.Clock.After(200 * time.Millisecond):
		}
	}
}

// pinnedTLS trusts the server whose chain holds the CA of hash caHash, and
// whose certificate that CA signed: what a host that has only the token can check.
func pinnedTLS(hash string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // checked by VerifyConnection against the token's hash instead
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the manager sent no certificate")
			}
			for _, c := range cs.PeerCertificates {
				if caHash(c.Raw) != hash {
					continue
				}
				pool := x509.NewCertPool()
				pool.AddCert(c)
				_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool})
				return err
			}
			return errOtherCluster
		},
	}
}
