cdef class Simulator:
    cdef public object _reported
    cdef public object _tick
    cdef public object agents_left
    cdef public object block_tokens
    cdef public object children
    cdef public object copy_end
    cdef public object copy_lane
    cdef public object copy_session
    cdef public object copy_start
    cdef public object dep
    cdef public object finished
    cdef public object heap
    cdef public object join_end
    cdef public object join_left
    cdef public object n_in
    cdef public object n_lanes
    cdef public object n_out
    cdef public object next_req
    cdef public object opts
    cdef public object order
    cdef public object overhead_s
    cdef public object part_of_tier
    cdef public object parts
    cdef public object pending
    cdef public object pin_until
    cdef public object plan
    cdef public object req
    cdef public object req_info
    cdef public object req_part
    cdef public object run_keys
    cdef public object run_lens
    cdef public object run_off
    cdef public object runs
    cdef public object seq
    cdef public object started
    cdef public object stride
    cdef public object t_stop
    cdef public object think_s
    cdef public object total_sessions
    cdef public object trace
    cdef public object window

    cpdef wake(self, w, t, version)
    cpdef _push(self, t, kind, a, b=*)
    cpdef _loop(self)
    cpdef _start_session(self, lane, t)
    cpdef _issue(self, r, c, t_send)
    cpdef on_prefilled(self, rid, t)
    cpdef on_finish(self, rid, t)
    cpdef _agent_done(self, a, c, t)
