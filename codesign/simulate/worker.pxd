from codesign.simulate.engine cimport Simulator

cdef class Worker:
    cdef public object E
    cdef public object S
    cdef public object busy_s
    cdef public object busy_total_s
    cdef public object cache
    cdef public object ctx_base
    cdef public object dec
    cdef public object dec_n2_s
    cdef public object dec_n_s
    cdef public object dec_wait
    cdef public object heap
    cdef public object index
    cdef public object kv_cap
    cdef public object kv_used
    cdef public object mode
    cdef public object model
    cdef public object n_dec
    cdef public object on_finish
    cdef public object pauses
    cdef public object pending_pf_tokens
    cdef public object pf_only_steps
    cdef public object pf_active
    cdef public object role
    cdef public object rows
    cdef public object run_S0
    cdef public object run_dt
    cdef public object run_k
    cdef public Simulator sim
    cdef public object step_c
    cdef public object step_chunks
    cdef public object step_rid
    cdef public object t0
    cdef public object version
    cdef public object waiting
    cdef public object window

    cpdef enqueue(self, rid, now, pf_tokens=*, last=*)
    cpdef _alone(self, rid, now, t1, c, row)
    cpdef enqueue_decode(self, rid, now)
    cpdef _cut(self, now)
    cpdef on_wake(self, now, version)
    cpdef _prefilled(self, rid, now)
    cpdef _join_decode(self, rid)
    cpdef _plan(self, now)
    cpdef _busy(self, t0, t1)
