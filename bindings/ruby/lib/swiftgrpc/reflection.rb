# frozen_string_literal: true

require "google/protobuf"
require "google/protobuf/descriptor_pb"

module SwiftGRPC
  # gRPC server reflection (grpc.reflection.v1 and v1alpha, ServerReflectionInfo), built from the
  # google-protobuf descriptors of the services a server serves: `server.enable_reflection`
  # before #start. Reflection clients (grpcurl, grpcio-reflection, Postman...) list the services
  # and fetch the files that describe them, with every file those depend on.
  #
  # google-protobuf 4.x keeps each file's descriptor, services included: those are served as
  # they are. The 3.x generated code (a DSL) keeps no file descriptor and no service: the files
  # are rebuilt from the message and enum descriptors (packages, nesting, map entries, oneofs,
  # proto3 optional fields, imports), and each service is placed in the file of its package
  # that holds its messages.
  module Reflection
    SERVICES = %w[grpc.reflection.v1.ServerReflection grpc.reflection.v1alpha.ServerReflection].freeze
    NOT_FOUND = StatusCodes::NOT_FOUND
    UNIMPLEMENTED = StatusCodes::UNIMPLEMENTED

    # The reflection protocol's messages, defined from a FileDescriptorProto built here (so
    # neither the 3.x DSL nor generated files are needed), once per package.
    module Messages
      D = Google::Protobuf

      def self.field(name, number, type, type_name: nil, repeated: false, oneof: nil)
        D::FieldDescriptorProto.new(name: name, number: number, type: type, type_name: type_name,
                                    label: repeated ? :LABEL_REPEATED : :LABEL_OPTIONAL,
                                    json_name: name.gsub(/_(\w)/) { Regexp.last_match(1).upcase },
                                    oneof_index: oneof)
      end

      def self.file(pkg)
        t = ->(name) { ".#{pkg}.#{name}" }
        msg = ->(name, fields, oneofs = []) do
          D::DescriptorProto.new(name: name, field: fields,
                                 oneof_decl: oneofs.map { |o| D::OneofDescriptorProto.new(name: o) })
        end
        s = :TYPE_STRING
        m = :TYPE_MESSAGE
        i = :TYPE_INT32
        D::FileDescriptorProto.new(
          name: "grpc/reflection/#{pkg.split('.').last}/reflection.proto", package: pkg, syntax: "proto3",
          message_type: [
            msg.call("ServerReflectionRequest",
                     [field("host", 1, s), field("file_by_filename", 3, s, oneof: 0),
                      field("file_containing_symbol", 4, s, oneof: 0),
                      field("file_containing_extension", 5, m, type_name: t.call("ExtensionRequest"), oneof: 0),
                      field("all_extension_numbers_of_type", 6, s, oneof: 0),
                      field("list_services", 7, s, oneof: 0)], ["message_request"]),
            msg.call("ExtensionRequest", [field("containing_type", 1, s), field("extension_number", 2, i)]),
            msg.call("ServerReflectionResponse",
                     [field("valid_host", 1, s),
                      field("original_request", 2, m, type_name: t.call("ServerReflectionRequest")),
                      field("file_descriptor_response", 4, m, type_name: t.call("FileDescriptorResponse"), oneof: 0),
                      field("all_extension_numbers_response", 5, m, type_name: t.call("ExtensionNumberResponse"),
                                                                    oneof: 0),
                      field("list_services_response", 6, m, type_name: t.call("ListServiceResponse"), oneof: 0),
                      field("error_response", 7, m, type_name: t.call("ErrorResponse"), oneof: 0)],
                     ["message_response"]),
            msg.call("FileDescriptorResponse", [field("file_descriptor_proto", 1, :TYPE_BYTES, repeated: true)]),
            msg.call("ExtensionNumberResponse",
                     [field("base_type_name", 1, s), field("extension_number", 2, i, repeated: true)]),
            msg.call("ListServiceResponse",
                     [field("service", 1, m, type_name: t.call("ServiceResponse"), repeated: true)]),
            msg.call("ServiceResponse", [field("name", 1, s)]),
            msg.call("ErrorResponse", [field("error_code", 1, i), field("error_message", 2, s)])
          ],
          service: [D::ServiceDescriptorProto.new(
            name: "ServerReflection",
            method: [D::MethodDescriptorProto.new(name: "ServerReflectionInfo",
                                                  input_type: t.call("ServerReflectionRequest"),
                                                  output_type: t.call("ServerReflectionResponse"),
                                                  client_streaming: true, server_streaming: true)]
          )]
        )
      end

      # @return [Hash{String=>Class}] the message classes of `pkg` by name
      def self.classes(pkg)
        pool = D::DescriptorPool.generated_pool
        pool.add_serialized_file(D::FileDescriptorProto.encode(file(pkg))) unless pool.lookup("#{pkg}.ServerReflectionRequest")
        # Every class is made now: google-protobuf 3.x crashes on a sub-message whose class was
        # never made (ExtensionRequest, which only a request carries).
        file(pkg).message_type.to_h { |d| [d.name, pool.lookup("#{pkg}.#{d.name}").msgclass] }
      end
    end

    # The FileDescriptorProtos describing a set of services.
    class Files
      D = Google::Protobuf
      TYPES = { double: :TYPE_DOUBLE, float: :TYPE_FLOAT, int64: :TYPE_INT64, uint64: :TYPE_UINT64,
                int32: :TYPE_INT32, fixed64: :TYPE_FIXED64, fixed32: :TYPE_FIXED32, bool: :TYPE_BOOL,
                string: :TYPE_STRING, group: :TYPE_GROUP, message: :TYPE_MESSAGE, bytes: :TYPE_BYTES,
                uint32: :TYPE_UINT32, enum: :TYPE_ENUM, sfixed32: :TYPE_SFIXED32, sfixed64: :TYPE_SFIXED64,
                sint32: :TYPE_SINT32, sint64: :TYPE_SINT64 }.freeze
      LABELS = { optional: :LABEL_OPTIONAL, repeated: :LABEL_REPEATED, required: :LABEL_REQUIRED }.freeze

      # @return [Hash{String=>String}] serialized FileDescriptorProto by file name
      attr_reader :files
      # @return [Hash{String=>String}] the file defining each symbol (types, services, methods)
      attr_reader :symbols

      # @param services [Array<Class>] GenericService classes
      def initialize(services)
        @pool = D::DescriptorPool.generated_pool
        @protos = {} # file name -> FileDescriptorProto
        @symbols = {}
        @placed = {}
        @deps = Hash.new { |h, k| h[k] = [] }
        services.each { |svc| add_service(svc) }
        @files = @protos.transform_values { |p| D::FileDescriptorProto.encode(p) }
      end

      # @return [Array<String>] `name` and the files it depends on, transitively, each once
      def with_dependencies(name, seen = {})
        return [] if seen[name] || !@files.key?(name)

        seen[name] = true
        [name] + @deps[name].flat_map { |d| with_dependencies(d, seen) }
      end

      private

      def add_service(svc)
        descs = svc.rpc_descs.values
        types = descs.flat_map { |d| [d.input, d.output] }.map { |t| t.is_a?(Class) ? t : t.type }
        return unless types.all? { |t| t.respond_to?(:descriptor) }

        served = @pool.lookup(svc.service_name)
        if defined?(D::ServiceDescriptor) && served.is_a?(D::ServiceDescriptor) &&
           served.file_descriptor.respond_to?(:to_proto)
          add_exact(served.file_descriptor) # 4.x: the file as protoc wrote it
          return
        end

        types.each { |t| add_type(t.descriptor) }
        add_synthesized_service(svc, descs)
      end

      # google-protobuf 4.x: a file (and its imports) as compiled.
      def add_exact(file)
        return if @protos.key?(file.name)

        proto = file.to_proto
        @protos[file.name] = proto
        pkg = proto.package.empty? ? "" : "#{proto.package}."
        proto.message_type.each { |m| index_message(file.name, "#{pkg}#{m.name}", m) }
        proto.enum_type.each { |e| @symbols["#{pkg}#{e.name}"] = file.name }
        proto.service.each do |s|
          @symbols["#{pkg}#{s.name}"] = file.name
          s["method"].each { |m| @symbols["#{pkg}#{s.name}.#{m.name}"] = file.name }
        end
        proto.dependency.each do |dep|
          @deps[file.name] << dep
          imported = @pool.respond_to?(:lookup_file) ? @pool.lookup_file(dep) : nil
          add_exact(imported) if imported
        end
      end

      def index_message(file, full, proto)
        @symbols[full] = file
        proto.nested_type.each { |n| index_message(file, "#{full}.#{n.name}", n) }
        proto.enum_type.each { |e| @symbols["#{full}.#{e.name}"] = file }
      end

      # google-protobuf 3.x: `desc` placed in its file (rebuilt from the pool's descriptors, the
      # file made on first use), with its enclosing message and every type its fields use.
      def add_type(desc)
        return if @placed[desc.name]

        @placed[desc.name] = true
        file = desc.file_descriptor.name
        proto = (@protos[file] ||= D::FileDescriptorProto.new(name: file, package: package_of(desc.name),
                                                              syntax: "proto3"))
        parent = parent_of(desc.name)
        add_type(@pool.lookup(parent)) if parent
        place(proto, desc)
      end

      # The enclosing message of a nested type's full name, if any.
      def parent_of(name)
        outer = name.rpartition(".").first
        d = outer.empty? ? nil : @pool.lookup(outer)
        d.is_a?(D::Descriptor) ? outer : nil
      end

      # The package of a type: its name up to the first part that names a type.
      def package_of(name)
        parts = name.split(".")
        (1..parts.size).each do |n|
          return parts.first(n - 1).join(".") if @pool.lookup(parts.first(n).join("."))
        end
        ""
      end

      def map_entry?(owner, field)
        field.label == :repeated && field.subtype.is_a?(D::Descriptor) &&
          field.subtype.name == "#{owner.name}_MapEntry_#{field.name}"
      end

      # Puts message or enum `d` into `proto` at its nesting.
      def place(proto, d)
        pkg = proto.package
        rel = pkg.empty? ? d.name : d.name.delete_prefix("#{pkg}.")
        *outer, base = rel.split(".")
        container = outer.empty? ? proto : nested_container(proto, outer)
        if d.is_a?(D::EnumDescriptor)
          container.enum_type << D::EnumDescriptorProto.new(
            name: base, value: d.map { |n, v| D::EnumValueDescriptorProto.new(name: n.to_s, number: v) }
          )
        else
          existing = container.is_a?(D::FileDescriptorProto) ? container.message_type : container.nested_type
          # (an enclosing message may have been made empty for a nested one placed first)
          msg = existing.find { |m| m.name == base } || (existing << D::DescriptorProto.new(name: base)).last
          fill_message(msg, d, proto)
        end
        @symbols[d.name] = proto.name
      end

      # The DescriptorProto of nested path `outer` in `proto` (made empty if not yet placed).
      def nested_container(proto, outer)
        list = proto.message_type
        node = nil
        outer.each do |name|
          node = list.find { |m| m.name == name } || (list << D::DescriptorProto.new(name: name)).last
          list = node.nested_type
        end
        node
      end

      def fill_message(msg, d, file_proto)
        oneofs = []
        d.each_oneof { |o| oneofs << o }
        oneofs.each { |o| msg.oneof_decl << D::OneofDescriptorProto.new(name: o.name) }
        in_oneof = {}
        oneofs.each_with_index { |o, i| o.each { |f| in_oneof[f.name] = i } }
        d.sort_by(&:number).each do |f|
          fp = D::FieldDescriptorProto.new(name: f.name, number: f.number, json_name: f.json_name,
                                           label: LABELS.fetch(f.label), type: TYPES.fetch(f.type))
          if map_entry?(d, f)
            entry = "#{f.name.split('_').map(&:capitalize).join}Entry"
            fp.type_name = ".#{d.name}.#{entry}"
            msg.nested_type << map_entry_proto(entry, f.subtype, file_proto)
          elsif f.subtype
            fp.type_name = ".#{f.subtype.name}"
            depend(file_proto, f.subtype)
          end
          if (i = in_oneof[f.name])
            fp.oneof_index = i
            fp.proto3_optional = true if oneofs[i].name == "_#{f.name}" && oneofs[i].count == 1
          end
          msg.field << fp
        end
      end

      def map_entry_proto(name, entry, file_proto)
        fields = entry.sort_by(&:number).map do |kv|
          fp = D::FieldDescriptorProto.new(name: kv.name, number: kv.number, json_name: kv.json_name,
                                           label: :LABEL_OPTIONAL, type: TYPES.fetch(kv.type))
          if kv.subtype
            fp.type_name = ".#{kv.subtype.name}"
            depend(file_proto, kv.subtype)
          end
          fp
        end
        D::DescriptorProto.new(name: name, field: fields, options: D::MessageOptions.new(map_entry: true))
      end

      # Records that `file_proto` uses `type` (an import if it is another file's), and places it.
      def depend(file_proto, type)
        other = type.file_descriptor.name
        if other != file_proto.name
          file_proto.dependency << other unless file_proto.dependency.include?(other)
          @deps[file_proto.name] << other unless @deps[file_proto.name].include?(other)
        end
        add_type(type)
      end

      # google-protobuf 3.x keeps no service descriptor: the service goes into the file of its
      # package that holds one of its messages, else into a file of its own.
      def add_synthesized_service(svc, descs)
        pkg, _, name = svc.service_name.rpartition(".")
        types = descs.flat_map { |d| [d.input, d.output] }.map { |t| (t.is_a?(Class) ? t : t.type).descriptor }
        home = types.map { |t| @protos[t.file_descriptor.name] }.find { |p| p.package == pkg }
        unless home
          home = D::FileDescriptorProto.new(name: "#{svc.service_name.tr('.', '/')}.proto", package: pkg, syntax: "proto3")
          @protos[home.name] = home
        end
        types.each { |t| depend(home, t) }
        methods = descs.map do |d|
          input = d.input.is_a?(Class) ? d.input : d.input.type
          output = d.output.is_a?(Class) ? d.output : d.output.type
          m = D::MethodDescriptorProto.new(name: d.name.to_s, input_type: ".#{input.descriptor.name}",
                                           output_type: ".#{output.descriptor.name}")
          m.client_streaming = true unless d.input.is_a?(Class) # (set only when true, as protoc does)
          m.server_streaming = true unless d.output.is_a?(Class)
          m
        end
        return if home.service.any? { |s| s.name == name }

        home.service << D::ServiceDescriptorProto.new(name: name, method: methods)
        @symbols[svc.service_name] = home.name
        descs.each { |d| @symbols["#{svc.service_name}.#{d.name}"] = home.name }
      end
    end

    # The ServerReflectionInfo handler of one package ("grpc.reflection.v1" or "...v1alpha").
    class Service
      # @param names [Array<String>] every service the server serves (ListServices)
      # @param files [Files]
      def initialize(pkg, names, files)
        @m = Messages.classes(pkg)
        @names = names
        @files = files
      end

      # A bidi handler: one response per request, in order.
      def call(requests, _call = nil)
        requests.lazy.map { |req| answer(req) }
      end

      def arity
        2
      end

      private

      def answer(req)
        resp = @m["ServerReflectionResponse"].new(valid_host: req.host, original_request: req)
        case req.message_request
        when :list_services
          resp.list_services_response = @m["ListServiceResponse"].new(
            service: @names.map { |n| @m["ServiceResponse"].new(name: n) }
          )
        when :file_by_filename then file_response(resp, req.file_by_filename, "file #{req.file_by_filename.inspect}")
        when :file_containing_symbol
          sym = req.file_containing_symbol.delete_prefix(".")
          file_response(resp, @files.symbols[sym], "symbol #{sym.inspect}")
        when :all_extension_numbers_of_type
          type = req.all_extension_numbers_of_type.delete_prefix(".")
          if @files.symbols.key?(type) # proto3 messages have no extensions
            resp.all_extension_numbers_response = @m["ExtensionNumberResponse"].new(base_type_name: type)
          else
            error(resp, NOT_FOUND, "type #{type.inspect} not found")
          end
        when :file_containing_extension
          ext = req.file_containing_extension
          error(resp, NOT_FOUND, "extension #{ext.extension_number} of #{ext.containing_type.inspect} not found")
        else error(resp, UNIMPLEMENTED, "unknown reflection request")
        end
        resp
      end

      def file_response(resp, file, what)
        names = file ? @files.with_dependencies(file) : []
        return error(resp, NOT_FOUND, "#{what} not found") if names.empty?

        resp.file_descriptor_response = @m["FileDescriptorResponse"].new(
          file_descriptor_proto: names.map { |n| @files.files[n] }
        )
      end

      def error(resp, code, message)
        resp.error_response = @m["ErrorResponse"].new(error_code: code, error_message: message)
      end
    end
  end
end
