package cluster

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// etcdReadyWait bounds how long a member may take to join its cluster.
const etcdReadyWait = time.Minute

// startEtcd starts this manager's etcd member, in dir. initial is etcd's
// initial-cluster ("name=https://ip:port,..."); existing says the cluster
// runs already (a manager that joins). A member that has run before finds its
// own data and ignores both.
func startEtcd(dir string, id identity, name, address string, p Ports, initial string, existing bool) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = name
	cfg.Dir = dir
	// etcd's own log says little a user acts on (and errors on every clean
	// close); what matters comes back as errors and through e.Err.
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(quietZap())
	peer := url.URL{Scheme: "https", Host: net.JoinHostPort(address, strconv.Itoa(p.Peer))}
	client := url.URL{Scheme: "https", Host: net.JoinHostPort(address, strconv.Itoa(p.Client))}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.InitialCluster = initial
	cfg.ClusterState = embed.ClusterStateFlagNew
	if existing {
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	// Mutual TLS everywhere: a host without a certificate of the cluster's CA
	// reads nothing and joins nothing.
	tlsInfo := transport.TLSInfo{CertFile: id.path(certFile), KeyFile: id.path(keyFile), TrustedCAFile: id.path(caFile), ClientCertAuth: true}
	cfg.ClientTLSInfo, cfg.PeerTLSInfo = tlsInfo, tlsInfo
	// Heartbeats are written several times a second; keep the history short.
	cfg.AutoCompactionMode = embed.CompactorModeRevision
	cfg.AutoCompactionRetention = "10000"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd: %w", err)
	case <-time.After(etcdReadyWait):
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("etcd: not ready after %s (is a quorum of managers up?)", etcdReadyWait)
	}
}

// clientTLS is the TLS of this node as a client of etcd and of other nodes.
func (id identity) clientTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(id.path(certFile), id.path(keyFile))
	if err != nil {
		return nil, err
	}
	ca, err := id.readCA()
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: ca.pool(), MinVersion: tls.VersionTLS12}, nil
}

func newClient(id identity, endpoints []string) (*clientv3.Client, error) {
	tc, err := id.clientTLS()
	if err != nil {
		return nil, err
	}
	return clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: tc, DialTimeout: 3 * time.Second,
		DialKeepAliveTime: 2 * time.Second, DialKeepAliveTimeout: 2 * time.Second,
		AutoSyncInterval: 30 * time.Second, Logger: quietZap()})
}
