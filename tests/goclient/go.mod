module pykes.test/goclient

go 1.22
