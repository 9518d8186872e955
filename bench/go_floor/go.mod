module go_floor

go 1.25
