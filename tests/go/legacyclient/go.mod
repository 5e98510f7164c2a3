module apnsim.test/legacyclient

go 1.21
