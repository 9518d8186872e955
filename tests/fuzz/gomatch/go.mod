module pykes.test/gomatch

go 1.22
