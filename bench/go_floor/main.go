// go_floor is the floor of a Go KES server on this machine: Go's own HTTP and TLS
// stack (net/http with its built-in HTTP/2, crypto/tls with Go's defaults) answering
// the bench's key routes with fixed JSON bodies. It does no policy lookup, no key
// lookup, no cryptography per request and no audit logging, so Go KES (same stack,
// strictly more work per request) cannot be faster than this on the same machine.
//
// With --work kes it is the Go KES model instead (kes_model.go): Go KES's per-request
// work on the same stack, an estimate of Go KES rather than a bound.
//
// Standard library only. bench/run.py --go-floor and --go-model build and drive it;
// see bench/README.md.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Fixed answers with the shapes and sizes of KES's: a 32-byte DEK and its 76-byte
// ciphertext (docs/compat/api.md), and an encrypt ciphertext of 32 + 44 bytes.
var (
	dekPlaintext  = fixedBytes(32, 0x11)
	dekCiphertext = fixedBytes(76, 0x22)
	generateBody  = mustJSON(map[string][]byte{"plaintext": dekPlaintext, "ciphertext": dekCiphertext})
	decryptBody   = mustJSON(map[string][]byte{"plaintext": dekPlaintext})
	encryptBody   = mustJSON(map[string][]byte{"ciphertext": dekCiphertext})
	forbiddenBody = []byte(`{"message":"not authorized: insufficient permissions"}`)
)

func fixedBytes(n int, b byte) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b + byte(i)
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// handshakeStats counts the completed TLS handshakes by key exchange group, version
// and ALPN protocol, and how many resumed a session. Printed to stderr on SIGTERM.
type handshakeStats struct {
	mu        sync.Mutex
	total     int
	resumed   int
	curves    map[string]int
	versions  map[string]int
	protocols map[string]int
}

func (s *handshakeStats) record(cs tls.ConnectionState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	if cs.DidResume {
		s.resumed++
	}
	s.curves[cs.CurveID.String()]++
	s.versions[tls.VersionName(cs.Version)]++
	proto := cs.NegotiatedProtocol
	if proto == "" {
		proto = "none"
	}
	s.protocols[proto]++
}

func (s *handshakeStats) MarshalJSON() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(map[string]any{
		"handshakes": s.total,
		"resumed":    s.resumed,
		"curves":     s.curves,
		"versions":   s.versions,
		"alpn":       s.protocols,
	})
}

func answer(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// The TLS layer already demands a certificate (RequireAnyClientCert); this is
		// the handler-level check KES also makes before computing the identity.
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			w.Write(forbiddenBody)
			return
		}
		io.Copy(io.Discard, io.LimitReader(r.Body, 1_000_000))
		w.Header().Set("Content-Type", "application/json")
		if body == nil {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Write(body)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7373", "listen address")
	certFile := flag.String("cert", "", "server certificate (PEM)")
	keyFile := flag.String("key", "", "server private key (PEM)")
	work := flag.String("work", "none", "none: fixed answers (the floor); kes: Go KES's per-request work (kes_model.go)")
	admin := flag.String("admin", "", "with --work kes: the admin identity (hex SHA-256 of the public key)")
	flag.Parse()
	if *certFile == "" || *keyFile == "" {
		fmt.Fprintln(os.Stderr, "go_floor: --cert and --key are required")
		os.Exit(2)
	}
	if *work != "none" && (*work != "kes" || *admin == "") {
		fmt.Fprintln(os.Stderr, "go_floor: --work is none or kes; kes needs --admin")
		os.Exit(2)
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go_floor: %v\n", err)
		os.Exit(2)
	}
	stats := &handshakeStats{
		curves:    map[string]int{},
		versions:  map[string]int{},
		protocols: map[string]int{},
	}
	// Go's defaults otherwise: TLS 1.3 preferred, X25519MLKEM768 / X25519 key shares,
	// session tickets on, and NextProtos left empty so that ServeTLS offers
	// "h2", "http/1.1" over ALPN.
	tlsConfig := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		ClientAuth:   tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			stats.record(cs)
			return nil
		},
	}
	var handler http.Handler
	if *work == "kes" {
		handler = kesModelHandler(*admin)
	} else {
		mux := http.NewServeMux()
		mux.Handle("POST /v1/key/create/{name}", answer(nil))
		mux.Handle("POST /v1/key/generate/{name}", answer(generateBody))
		mux.Handle("POST /v1/key/decrypt/{name}", answer(decryptBody))
		mux.Handle("POST /v1/key/encrypt/{name}", answer(encryptBody))
		handler = mux
	}
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 5 * time.Second, // as KES
		IdleTimeout:       90 * time.Second,
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go_floor: %v\n", err)
		os.Exit(2)
	}
	done := make(chan os.Signal, 1)
	signal.Notify(done, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-done
		b, _ := json.Marshal(stats)
		fmt.Fprintf(os.Stderr, "STATS %s\n", b)
		os.Exit(0)
	}()
	fmt.Fprintf(os.Stderr, "go_floor: %s, GOMAXPROCS=%d, work=%s, listening on %s\n",
		runtime.Version(), runtime.GOMAXPROCS(0), *work, ln.Addr())
	fmt.Println("ready")
	if err := srv.ServeTLS(ln, "", ""); err != nil {
		fmt.Fprintf(os.Stderr, "go_floor: %v\n", err)
		os.Exit(1)
	}
}
