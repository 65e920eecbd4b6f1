cdef class RunCache:
    cdef public object cap_dev
    cdef public object cap_host
    cdef public object cap_sto
    cdef public object dev
    cdef public object host
    cdef public object mid
    cdef public object owner
    cdef public object pin_until
    cdef public object sto
    cdef public object tot
    cdef public object used_dev
    cdef public object used_host
    cdef public object used_sto

    cpdef touch1(self, k, n, owner, now_s)
    cpdef _touch_one(self, k, n, owner)
    cpdef _evict(self, now_s)
    cpdef _evict_storage(self)
    cpdef _evict_dev(self, now_s)
