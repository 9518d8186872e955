module pykes/bench/kesload

go 1.22
