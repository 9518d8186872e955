package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
)

// The KMS API (docs/kms-api.md): POST /v1/kms/<enclave>, a body of frames
// [u16 BE command][u32 BE length][protobuf message], one answer frame per request frame.
const (
	kmsGenerateKey  = 207 // KEY:GENERATE
	kmsFrameHeader  = 6
	kmsDataKeyBytes = 32
)

// kmsGenerateRequest is a GenerateKeyRequest{Name: name, Length: 32} in protobuf's wire
// format, built by hand to keep kesload on the standard library: field 1 (string,
// wire type 2) and field 4 (varint, wire type 0). Names are short, so every length
// fits one varint byte.
func kmsGenerateRequest(name string) ([]byte, error) {
	if len(name) > 127 {
		return nil, fmt.Errorf("--key-name of the KMS rows must be at most 127 bytes")
	}
	message := []byte{1<<3 | 2, byte(len(name))}
	message = append(message, name...)
	return append(message, 4<<3|0, kmsDataKeyBytes), nil
}

// kmsBatch is a body of n frames, each the same command and message.
func kmsBatch(command uint16, message []byte, n int) []byte {
	frame := make([]byte, kmsFrameHeader, kmsFrameHeader+len(message))
	binary.BigEndian.PutUint16(frame, command)
	binary.BigEndian.PutUint32(frame[2:], uint32(len(message)))
	frame = append(frame, message...)
	return bytes.Repeat(frame, n)
}

// kmsFrames counts the frames of an answer body, each of which must carry command;
// an answer that does not split into whole frames is an error.
func kmsFrames(body []byte, command uint16) (int, error) {
	n := 0
	for len(body) > 0 {
		if len(body) < kmsFrameHeader {
			return n, fmt.Errorf("truncated answer frame")
		}
		got := binary.BigEndian.Uint16(body)
		length := binary.BigEndian.Uint32(body[2:])
		if got != command {
			return n, fmt.Errorf("answer frame of command %d, not %d", got, command)
		}
		if uint64(length) > uint64(len(body)-kmsFrameHeader) {
			return n, fmt.Errorf("truncated answer frame")
		}
		body = body[kmsFrameHeader+int(length):]
		n++
	}
	return n, nil
}

// newKMSGenerate is the kms-generate operation: batch GenerateKey commands per request
// in enclave, accepted when the answer is a 200 with exactly batch frames of command 207.
func newKMSGenerate(keyName, enclave string, batch int) (operation, error) {
	if enclave == "" {
		return operation{}, fmt.Errorf("--op kms-generate needs --enclave (the KMS API has no default enclave)")
	}
	message, err := kmsGenerateRequest(keyName)
	if err != nil {
		return operation{}, err
	}
	check := func(r reply) error {
		if err := expectOK(r); err != nil {
			return err
		}
		n, err := kmsFrames(r.body, kmsGenerateKey)
		if err == nil && n != batch {
			err = fmt.Errorf("%d answer frames for %d commands", n, batch)
		}
		return err
	}
	body := kmsBatch(kmsGenerateKey, message, batch)
	return operation{http.MethodPost, "/v1/kms/" + url.PathEscape(enclave), body, check}, nil
}
