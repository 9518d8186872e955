package main

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

const apiKeyPrefix = "kes:v1:"

// certificateFromAPIKey turns "kes:v1:" + base64(0x00 ‖ Ed25519 seed) into the client
// certificate a KES SDK presents for that key: self-signed, the identity as common
// name, client authentication only, valid for 90 days. The server identifies the
// client by the public key alone, so any such certificate carries the key's identity.
func certificateFromAPIKey(text string) (tls.Certificate, string, error) {
	encoded := strings.TrimPrefix(strings.TrimSpace(text), apiKeyPrefix)
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("invalid API key: %w", err)
	}
	if len(raw) != 1+ed25519.SeedSize || raw[0] != 0 {
		return tls.Certificate{}, "", errors.New("invalid API key: not a kes:v1 Ed25519 key")
	}
	private := ed25519.NewKeyFromSeed(raw[1:])
	identity, err := identityOf(private.Public())
	if err != nil {
		return tls.Certificate{}, "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, "", err
	}
	now := time.Now().UTC()
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: identity},
		NotBefore:             now,
		NotAfter:              now.Add(90 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, private.Public(), private)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: private}, identity, nil
}

// certificateFromFiles loads a PEM certificate and its private key.
func certificateFromFiles(certFile, keyFile string) (tls.Certificate, string, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, "", err
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return tls.Certificate{}, "", err
	}
	identity, err := identityOf(leaf.PublicKey)
	return pair, identity, err
}

// identityOf is the name a KES server gives a client: the hex SHA-256 of the DER
// SubjectPublicKeyInfo of its certificate's public key.
func identityOf(public crypto.PublicKey) (string, error) {
	spki, err := x509.MarshalPKIXPublicKey(public)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:]), nil
}
