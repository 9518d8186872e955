"""Values printed and read the way Go does, where pykes must match the Go server byte
for byte: durations, timestamps, JSON bodies, quoted strings and OS error texts."""
